"""`python -m services.jobs --kubeconfig FILE --health-port N`: the Job, CronJob and
ttl-after-finished controllers."""
from __future__ import annotations

import argparse
import sys

from kubecore.controller.flags import controller_parser, run_controller_main
from services.jobs.app import JobsManager
from services.jobs.job_plan import DEFAULT_BACKOFF


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = controller_parser("services.jobs", __doc__ or "", health_port=10267)
    parser.add_argument("--job-workers", type=int, default=5)
    parser.add_argument("--cronjob-workers", type=int, default=5)
    parser.add_argument("--ttl-workers", type=int, default=5)
    parser.add_argument("--pod-failure-backoff", type=float, default=DEFAULT_BACKOFF,
                        help="seconds before a failed Job pod is replaced, doubling per "
                        "consecutive failure up to 10 minutes (kube: 10)")
    args = parser.parse_args(argv)
    if args.pod_failure_backoff < 0:
        parser.error("--pod-failure-backoff must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_controller_main(parse_args(argv), lambda client, a: JobsManager(
        client, job_workers=a.job_workers, cronjob_workers=a.cronjob_workers,
        ttl_workers=a.ttl_workers, pod_failure_backoff=a.pod_failure_backoff))


if __name__ == "__main__":
    sys.exit(main())
