"""The security policy pack: rules over the final synthesized JSON, run as one Aspect per stack."""
