"""Running Terraform on the synthesized stacks: the drift check, plan reports for pull requests, the local
rehearsal against the emulator, and the runner they (and the tests) share.

Plain Python, no jsii: these commands read the synthesized ``cdk.tf.json`` and Terraform's own output.
"""
