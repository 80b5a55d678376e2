"""A real nginx (Debian's package) in the foreground, with a configuration rendered from a template file.

    with NginxServer(LAB / "deploy" / "nginx.conf.template",
                     variables={"upstream": triton.http_url, "certificate": cert, "key": key},
                     ports=["https_port"], health_url="https://127.0.0.1:{https_port}/healthz",
                     verify=ca) as nginx:
        requests.get(nginx.url("https_port", "/v2/health/ready"), verify=ca)

The template is a whole `nginx.conf` whose placeholders are written `{{ name }}` (nginx's own `$variables`
are left alone). Every placeholder must get a value and every value must be used: a typo is an error,
not a silently broken proxy. Three kinds of values:
- `variables`: anything you pass (upstream addresses, certificate paths, limits);
- `ports`: names of placeholders that receive a free port each (or the number you pass in `variables`);
- `prefix`: always set, the server's private folder (nginx's `-p` prefix). Relative paths in the
  config resolve against it; `logs/` and `tmp/` exist there, so a template can say
  `access_log logs/access.log;` and `client_body_temp_path {{ prefix }}/tmp/body;`.

nginx runs with `daemon off;` and its pid file and error log inside the prefix (command-line `-g`/`-e`, so
the template does not set them), in its own process group with a parent-death signal like every course
server. The rendered file is checked with `nginx -t` first; its complaint becomes the error you see.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import requests

from llmserve.servers.base import ManagedServer, PortInUseError, ServerStartError, pick_port, port_is_free

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class NginxConfigError(ServerStartError):
    """`nginx -t` rejected the rendered configuration; the message carries its output."""


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                           if Path(p).exists()), None)
    if not found:
        raise ServerStartError("nginx is not installed: run `make setup-system` (installs Debian's nginx).")
    return found


def placeholders(template: str) -> set[str]:
    """The `{{ name }}` placeholders of a template."""
    return set(PLACEHOLDER.findall(template))


def render_template(template: str, variables: Mapping[str, object]) -> str:
    """Replace every `{{ name }}` with str(variables[name]).

    ValueError names the placeholders without a value and the values without a placeholder (a typo
    on either side), so a half-rendered configuration never reaches nginx."""
    wanted = placeholders(template)
    missing, unused = sorted(wanted - set(variables)), sorted(set(variables) - wanted)
    if missing or unused:
        raise ValueError("nginx template: " + "; ".join(
            part for part in (f"no value for {', '.join(missing)}" if missing else "",
                              f"values not used by the template: {', '.join(unused)}" if unused else "") if part))
    return PLACEHOLDER.sub(lambda match: str(variables[match.group(1)]), template)


def nginx_command(binary: str, prefix: Path, config_file: Path, *, test: bool = False) -> list[str]:
    """The command line: prefix, config, error log and pid file in the prefix, foreground (`daemon off`)."""
    command = [binary, "-p", f"{prefix}/", "-c", str(config_file), "-e", str(prefix / "logs" / "error.log"),
               "-g", f"daemon off; pid {prefix / 'nginx.pid'};"]
    return command + (["-t", "-q"] if test else [])


def test_config(config_file: str | Path, prefix: str | Path | None = None, binary: str | None = None) -> None:
    """Run `nginx -t` on a configuration file; NginxConfigError with nginx's output when it is rejected.

    `prefix` (default: a fresh temporary folder with logs/ and tmp/) is where relative paths resolve."""
    binary = binary or nginx_binary()
    with tempfile.TemporaryDirectory(prefix="nginx-t-") as scratch:
        root = Path(prefix) if prefix else Path(scratch)
        for sub in ("logs", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        result = subprocess.run(nginx_command(binary, root, Path(config_file), test=True),
                                capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise NginxConfigError(f"nginx -t rejected {config_file}:\n{(result.stderr + result.stdout).strip()}")


class NginxServer(ManagedServer):
    """A real nginx with a configuration rendered from a template file (see the module docstring)."""

    name = "nginx"

    def __init__(self, template: str | Path, *, variables: Mapping[str, object] | None = None,
                 ports: Iterable[str] = ("port",), health_url: str = "http://127.0.0.1:{port}/",
                 verify: bool | str = True, healthy: Callable[[requests.Response], bool] | None = None,
                 start_timeout: float = 30.0, **kwargs):
        binary = nginx_binary()
        self.template = Path(template)
        # nginx overwrites its environment with its process title, so the test harness's run marker
        # (see find_server_processes) goes into the prefix path, which that title shows.
        marker = os.environ.get("LLMSERVE_TEST_RUN", "")
        self.workdir = Path(tempfile.mkdtemp(prefix=f"nginx-{marker}-" if marker else "nginx-"))
        for sub in ("logs", "tmp"):
            (self.workdir / sub).mkdir()
        values = dict(variables or {})
        self.port_numbers = {name: pick_port(values.get(name)) for name in ports}
        values.update(self.port_numbers, prefix=self.workdir)
        self.config_file = self.workdir / "nginx.conf"
        self.config_file.write_text(render_template(self.template.read_text(), values))
        self.error_log = self.workdir / "logs" / "error.log"
        self.verify = verify
        super().__init__(nginx_command(binary, self.workdir, self.config_file),
                         health_url=health_url.format(**self.port_numbers), ports=self.port_numbers.values(), cwd=self.workdir,
                         start_timeout=start_timeout, log_path=self.workdir / "logs" / "stdout.log",
                         healthy=healthy or (lambda response: True), **kwargs)
        self.binary = binary

    def url(self, port_name: str = "port", path: str = "/", scheme: str | None = None) -> str:
        """http(s)://127.0.0.1:<port><path>; the scheme defaults to https for a port name containing 'https'."""
        scheme = scheme or ("https" if "https" in port_name else "http")
        return f"{scheme}://127.0.0.1:{self.port_numbers[port_name]}{path}"

    def launch(self) -> NginxServer:
        for name, port in self.port_numbers.items():
            if not port_is_free(port):
                raise PortInUseError(f"nginx: port {port} ({name}) is already in use by another process. "
                                     "Stop that process or let the course pick a free port.")
        test_config(self.config_file, self.workdir, self.binary)
        return super().launch()

    poll_interval_s = 0.1  # nginx starts in milliseconds

    def _health_request_options(self) -> dict:
        return {"verify": self.verify}  # a TLS health URL: a CA file, or False

    def _log_description(self) -> str:
        return f"its error log ({self.error_log})"

    def log_tail(self, lines: int = 25) -> str:
        """The end of nginx's error log (where nginx writes), then of its standard output."""
        parts = []
        for path in (self.error_log, self.log_path):
            parts += path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return "\n".join(parts) or "(no log)"

    def access_log(self, name: str = "access.log") -> list[str]:
        """Lines of a log file the config writes into logs/ (e.g. `access_log logs/access.log;`)."""
        path = self.workdir / "logs" / name
        return path.read_text(errors="replace").splitlines() if path.exists() else []
