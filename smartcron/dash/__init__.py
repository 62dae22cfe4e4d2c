"""The dashboard's data and page (`smartcronctl dashboard`, `smartcronctl report --html`).

Only those two commands import this package: it pulls in Jinja2, plotly and
cron-descriptor, which the daemon and the other CLIs never load."""
