"""The one place that lists check types. The config union is built from it."""

from __future__ import annotations

from checks.base import Check, CheckConfig, CheckContext, CheckType


def _load() -> dict[str, CheckType]:
    from checks import command, disk, link, load, memory, process, tcp

    modules = [disk, memory, load, process, tcp, command, link]
    from checks import backup_files, borg, restic, ups  # backups and power (issue 4)

    modules += [backup_files, restic, borg, ups]
    from checks import dns, http, icmp, ntp  # network probes (issue 3)

    modules += [http, dns, icmp, ntp]
    from checks import alert, cert_file, prometheus, push  # signals in (issue 12)

    modules += [push, alert, prometheus, cert_file]
    types = {m.TYPE.name: m.TYPE for m in modules}
    assert len(types) == len(modules), "two check modules claim the same type"
    return types


CHECK_TYPES: dict[str, CheckType] = _load()


def build(config: CheckConfig, ctx: CheckContext) -> Check:
    return CHECK_TYPES[config.type].factory(config, ctx)
