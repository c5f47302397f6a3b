"""Monthly cost estimate of the synthesized stacks (``make cost``; docs/costs.md).

Plain Python over ``cdktf.out/stacks/*/cdk.tf.json``: no cdktf or jsii import, so it runs in well under a second
on stacks already synthesized. Prices come from the dated tables in ``costs/prices/``.
"""
