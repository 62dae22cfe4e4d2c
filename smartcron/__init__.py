"""SmartCron: a crontab-compatible cron daemon that can defer annotated jobs."""

__version__ = "0.1.0"
