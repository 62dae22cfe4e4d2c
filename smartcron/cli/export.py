"""smartcronctl export: crontab lines as Kubernetes CronJobs or systemd timer units."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from smartcron.cli.common import CONTEXT, read_text_arg, user_errors

if TYPE_CHECKING:
    from smartcron.export.jobs import ExportJob


def _warn(message: str) -> None:
    click.echo(f"smartcronctl export: {message} (warning)", err=True)


def _system_files(config_file: str | None) -> list[Path]:
    """/etc/crontab and /etc/cron.d/* (run-parts names only), as the daemon reads them."""
    from smartcron.config import read_config
    from smartcron.cron.crontab import cron_d_name_ok

    config = read_config(config_file, user_mode=False)
    files = [config.crontab] if config.crontab is not None and config.crontab.exists() else []
    if config.cron_d is not None and config.cron_d.is_dir():
        files += [
            config.cron_d / name
            for name in sorted(os.listdir(config.cron_d))
            if cron_d_name_ok(name)
        ]
    return files


def _write(out: str | None, documents: list[tuple[str, str]], separator: str) -> None:
    """Each (file name, text) into `out`, or to stdout joined by `separator` (systemd's
    units each under a `# FILE: name` line, so that a reader can split them)."""
    if out is None:
        if separator != "---\n":
            documents = [(name, f"# FILE: {name}\n{text}") for name, text in documents]
        click.echo(separator.join(text for _, text in documents), nl=False)
        return
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in documents:
        (directory / name).write_text(text)
    click.echo(f"{len(documents)} file(s) written to {directory}", err=True)


@click.command("export", context_settings=CONTEXT)
@click.option(
    "--to", "target", required=True, type=click.Choice(["kubernetes", "systemd"]),
    help="What to write: CronJob manifests or .timer/.service pairs.",
)  # fmt: skip
@click.option("--crontab", "crontab", metavar="FILE", help="A user-format crontab ('-': stdin).")
@click.option("--system", is_flag=True, help="/etc/crontab and /etc/cron.d (system format).")
@click.option("--config", "config_file", metavar="FILE", help="Where --system's files are.")
@click.option("--out", "out", metavar="DIR", help="Write one file per object into DIR.")
@click.option(
    "--image", default=None, metavar="IMAGE",
    help="Kubernetes: the container image (default: a placeholder to replace).",
)  # fmt: skip
@user_errors
def export_cmd(
    target: str,
    crontab: str | None,
    system: bool,
    config_file: str | None,
    out: str | None,
    image: str | None,
) -> None:
    """Export crontab lines to Kubernetes CronJobs or systemd timers.

    What a target cannot express (the smart gate's keys, @reboot) is said on stderr;
    Kubernetes keeps such keys as smartcron.io/ annotations, systemd as comments.

    \b
    Examples:
      smartcronctl export --to kubernetes --crontab mycrontab --image busybox:1.36
      smartcronctl export --to systemd --system --out /tmp/units
    """
    from smartcron.cron.crontab import Kind
    from smartcron.export import jobs as exported

    if (crontab is None) == (not system):
        raise click.UsageError("give exactly one of --crontab FILE and --system")
    found: list[exported.ExportJob] = []
    if crontab is not None:
        text, path = read_text_arg(crontab)
        found += exported.load(text, path, Kind.USER)
    else:
        for file in _system_files(config_file):
            text, path = read_text_arg(str(file))
            found += exported.load(text, path, Kind.SYSTEM)
    found = exported.unique(found)
    if target == "kubernetes":
        _write(out, _kubernetes(found, image), "---\n")
    else:
        _write(out, _systemd(found), "\n")


def _kubernetes(found: list[ExportJob], image: str | None) -> list[tuple[str, str]]:
    import yaml

    from smartcron.export.kubernetes import DEFAULT_IMAGE, NotExportable, cron_job

    documents = []
    for job in found:
        try:
            manifest, kept = cron_job(job, image or DEFAULT_IMAGE)
        except NotExportable as err:
            _warn(f"{job.where}: not exported: {err}")
            continue
        _warn_kept(job, kept, "in Kubernetes", "as smartcron.io/ annotations")
        if "timeZone" not in manifest["spec"]:
            _warn(f"{job.where}: {job.name}: the system zone has no name: no timeZone")
        text = yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=1 << 16)
        documents.append((f"{job.name}.yaml", text))
    return documents


def _warn_kept(job: ExportJob, kept: list[str], where: str, how: str) -> None:
    """A smart job's keys the target has no equivalent for, and where they were kept."""
    if kept or job.smart is not None:
        keys = ", ".join(kept) if kept else "none"
        _warn(
            f"{job.where}: {job.name}: the smart gate does not run {where}; keys kept {how}: {keys}"
        )


def _systemd(found: list[ExportJob]) -> list[tuple[str, str]]:
    from smartcron.export.systemd import units

    documents: list[tuple[str, str]] = []
    for job in found:
        if job.entry.spec.reboot:
            _warn(f"{job.where}: not exported: @reboot has no timer (use a service)")
            continue
        try:
            texts, kept = units(job)
        except ValueError as err:
            _warn(f"{job.where}: not exported: {err}")
            continue
        _warn_kept(job, kept, "under systemd", "as comments")
        documents += texts.items()
    return documents
