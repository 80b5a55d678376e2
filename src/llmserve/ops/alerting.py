"""Alert rules and Alertmanager configuration as checked artefacts, with the real tools.

- `check_rules`: `promtool check rules` (syntax, PromQL, duplicate names).
- `run_rule_tests`: `promtool test rules` on a test file (fire, do-not-fire and resolve cases).
- `check_alertmanager_config`: `amtool check-config`.
- `route_receivers`: `amtool config routes test`: which receiver(s) a set of labels reaches.

Shared by both tracks' Lab 2.5. Each raises `AlertingArtefactError` with the tool's own output when the
tool refuses, and a clear error when the tool is missing.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path


class AlertingArtefactError(ValueError):
    """A rule file, rule test or Alertmanager config that the real tool refused (message: its output)."""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        package = "prometheus" if name == "promtool" else "prometheus-alertmanager"
        raise FileNotFoundError(f"{name} is not installed: run `make setup-system` (installs Debian's {package})")
    return found


def _run(argv: list[str], what: str, cwd: Path | None = None, stdout_only: bool = False) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=120)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise AlertingArtefactError(f"{what} failed:\n{output}")
    return result.stdout.strip() if stdout_only else output


def check_rules(*rule_files: str | Path) -> str:
    """`promtool check rules`; returns its output (e.g. "SUCCESS: 7 rules found")."""
    return _run([_tool("promtool"), "check", "rules", *map(str, rule_files)], "promtool check rules")


def run_rule_tests(test_file: str | Path) -> str:
    """`promtool test rules` on a rule-test file (its rule_files are relative to the test file)."""
    test_file = Path(test_file).resolve()
    return _run([_tool("promtool"), "test", "rules", test_file.name], "promtool test rules", cwd=test_file.parent)


def check_alertmanager_config(config: str | Path) -> str:
    """`amtool check-config` on a file, or on YAML text (written to a temporary file)."""
    import tempfile

    if isinstance(config, Path):
        return _run([_tool("amtool"), "check-config", str(config)], "amtool check-config")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "alertmanager.yml"
        path.write_text(config)
        return _run([_tool("amtool"), "check-config", str(path)], "amtool check-config")


def route_receivers(config_file: str | Path, labels: Mapping[str, str]) -> list[str]:
    """The receivers Alertmanager's routing tree sends an alert with these labels to (`amtool config routes test`)."""
    matchers = [f"{key}={value}" for key, value in labels.items()]
    output = _run([_tool("amtool"), "config", "routes", "test", f"--config.file={config_file}", *matchers],
                  "amtool config routes test", stdout_only=True)
    return [name.strip() for name in output.splitlines()[-1].split(",") if name.strip()]


_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                 "offset", "inf", "nan"}


def metric_names_in_rules(*rule_files: str | Path) -> set[str]:
    """The metric names the rules read from scrapes: every series selector in every `expr`, minus the names
    the files themselves record. Check them against a live `/metrics` so a renamed metric cannot leave an
    alert that silently never fires."""
    import yaml

    referenced: set[str] = set()
    recorded: set[str] = set()
    for rule_file in rule_files:
        for group in yaml.safe_load(Path(rule_file).read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    recorded.add(rule["record"])
                referenced |= metric_names_in_expr(str(rule["expr"]))
    return referenced - recorded


def metric_names_in_expr(expr: str) -> set[str]:
    """The metric names one PromQL expression selects (functions, keywords, labels and strings left out)."""
    import re

    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)                       # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)                                # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                               # range windows
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    return {name for name in re.findall(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", expr)
            if name.lower() not in _PROMQL_WORDS}
