"""NginxServer's pure parts: template placeholders, rendering that refuses typos, the command line."""
from pathlib import Path

import pytest

from llmserve.servers.nginx import nginx_command, placeholders, render_template


def test_placeholders_are_double_braces_and_nginx_variables_are_left_alone():
    text = "listen {{ port }}; map $http_x_api_key $ok { \"{{api_key}}\" 1; } set $x {{ port }};"
    assert placeholders(text) == {"port", "api_key"}
    assert render_template(text, {"port": 8443, "api_key": "k"}) == \
        "listen 8443; map $http_x_api_key $ok { \"k\" 1; } set $x 8443;"


def test_a_missing_or_unused_value_is_an_error_naming_it():
    with pytest.raises(ValueError, match="no value for rate"):
        render_template("rate={{ rate }} burst={{ burst }}", {"burst": 5})
    with pytest.raises(ValueError, match="values not used by the template: brust"):
        render_template("burst={{ burst }}", {"burst": 5, "brust": 5})
    with pytest.raises(ValueError, match=r"no value for rate; values not used by the template: rat\b"):
        render_template("{{ rate }}", {"rat": 1})


def test_the_command_runs_in_the_foreground_with_everything_in_the_prefix():
    command = nginx_command("/usr/sbin/nginx", Path("/tmp/p"), Path("/tmp/p/nginx.conf"))
    assert command[:5] == ["/usr/sbin/nginx", "-p", "/tmp/p/", "-c", "/tmp/p/nginx.conf"]
    assert command[command.index("-e") + 1] == "/tmp/p/logs/error.log"
    assert command[command.index("-g") + 1] == "daemon off; pid /tmp/p/nginx.pid;"
    assert nginx_command("nginx", Path("/tmp/p"), Path("c"), test=True)[-2:] == ["-t", "-q"]
