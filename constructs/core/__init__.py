"""What every feature builds on: errors, settings types, the instance-type catalog, the platform context, the
provider bindings, IAM policy helpers and the synthesis checks.

Importing this package loads nothing: each module is imported on its own. Only ``bindings``, ``iam`` and
``checks`` touch cdktf or the provider bindings; the others are plain Python and safe for settings modules.
"""
