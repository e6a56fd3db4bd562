"""The Job, CronJob and ttl-after-finished controllers, one process, shared informers
(kube-controller-manager's job-controller, cronjob-controller and ttl-after-finished-controller).

Layers, pure first:
- `job_plan`: a Job's sync from its pods: counting through the tracking finalizer, backoff,
  deadlines, completion and failure conditions, Indexed pods, suspension, the TTL's expiry;
- `cronjob_plan`: a CronJob's sync from its Jobs: schedule times (`kubecore.api.cron`),
  concurrency policies, the starting deadline, history limits;
- `job`, `cronjob`, `ttl`: the controllers (informers, queues, API writes);
- `app`: the three over one informer factory; `__main__`: the process.
"""
