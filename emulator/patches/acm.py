"""ACM: a DNS-validated certificate is issued once its validation record is in Route53, as in AWS.

moto 5.2.5 issues every requested certificate a fixed time after the request (``MOTO_ACM_VALIDATION_WAIT``, 60
seconds by default), whether or not its validation record exists. ACM issues a DNS-validated certificate once it
finds the CNAME it asked for; ``aws_acm_certificate_validation`` waits for that. With this patch the emulator
issues the certificate as soon as a hosted zone of the account holds the validation record of every name on it
(the record moto asks for), and never without it, so the deploy test proves the platform creates that record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.moto_helpers import wrap

PENDING = "PENDING_VALIDATION"


def _names_in_route53(account_id: str, partition: str) -> set[tuple[str, str, str]]:
    """(record name, type, first value) of every record in the account's hosted zones, names without the dot."""
    from moto.route53.models import route53_backends

    found = set()
    for zone in route53_backends[account_id][partition].zones.values():
        for record in zone.rrsets:
            values = [str(v).rstrip(".").lower() for v in (record.records or [])]
            found.add((str(record.name).rstrip(".").lower(), str(record.type), values[0] if values else ""))
    return found


def _validation_records(bundle: Any) -> set[tuple[str, str, str]]:
    """The CNAMEs ACM asks for, one per name on the certificate, in the form of :func:`_names_in_route53`."""
    wanted = set()
    for option in bundle.describe()["Certificate"].get("DomainValidationOptions", []):
        record = option["ResourceRecord"]
        wanted.add((record["Name"].rstrip(".").lower(), record["Type"], record["Value"].rstrip(".").lower()))
    return wanted


def apply() -> None:
    """Issue a pending DNS-validated certificate when Route53 holds its validation records, and only then."""
    from moto.acm.models import CertBundle

    def issue_when_validated(original: Callable[..., Any]) -> Callable[..., Any]:
        def check(self: Any) -> None:
            if self.type == "AMAZON_ISSUED" and self.status == PENDING:
                wanted = _validation_records(self)
                # arn:<partition>:acm:<region>:<account>:certificate/<id>
                partition, account_id = self.arn.split(":")[1], self.arn.split(":")[4]
                if wanted and wanted <= _names_in_route53(account_id, partition):
                    self.status = "ISSUED"
                # Skip moto's timer: it would issue the certificate without its records.
                return
            original(self)

        return check

    wrap(CertBundle, "check", issue_when_validated)
