#!/usr/bin/env bash
# Debian packages the labs use: Prometheus (with promtool), Alertmanager (with amtool), node-exporter and
# process-exporter (vLLM Lab 2.5), nginx, Chromium, Redis, openssl and unshare
# (Triton Lab 2.4/2.5), g++ (torch.compile's CPU backend, Triton Lab 2.4 · 03), and tcmalloc for `make bench`. Needs root.
# Services are not started: the course starts its own Prometheus (and Redis) per notebook.
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
  echo "[setup-system] run as root (or: sudo make setup-system)" >&2; exit 1
fi
missing=()
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
{ command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null; } || missing+=(prometheus-alertmanager)
command -v prometheus-node-exporter >/dev/null || missing+=(prometheus-node-exporter)
command -v prometheus-process-exporter >/dev/null || missing+=(prometheus-process-exporter)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v chromium >/dev/null || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
# tcmalloc: vLLM's CPU guide recommends preloading it; `make bench` (cpu_levers) measures it.
command -v openssl >/dev/null || missing+=(openssl)
command -v unshare >/dev/null || missing+=(util-linux)
command -v g++ >/dev/null || missing+=(g++)
ldconfig -p | grep 'libtcmalloc_minimal\.so' >/dev/null || missing+=(libtcmalloc-minimal4)
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "[setup-system] prometheus, alertmanager, node- and process-exporter, nginx, chromium, redis-server, openssl, unshare, g++ and libtcmalloc-minimal4 are installed"; exit 0
fi
# Keep package scripts from starting services (prometheus, alertmanager, the exporters, nginx, redis) on install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod +x $policy; created_policy=1; fi
trap '[[ $created_policy -eq 1 ]] && rm -f $policy' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Stop anything a package started anyway.
pkill -x prometheus 2>/dev/null || true
pkill -f prometheus-alertmanager 2>/dev/null || true
pkill -f prometheus-node-exporter 2>/dev/null || true
pkill -f prometheus-process-exporter 2>/dev/null || true
pkill -x nginx 2>/dev/null || true
pkill -x redis-server 2>/dev/null || true
echo "[setup-system] installed: ${missing[*]}"
