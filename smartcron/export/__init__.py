"""Exporting crontab lines to other schedulers: Kubernetes CronJobs and systemd timers
(`smartcronctl export`). Each target says what it cannot express, never guesses."""
