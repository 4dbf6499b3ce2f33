#!/usr/bin/env bash
# Bring a Debian 12 machine to the point where `homeline` runs: host packages,
# the virtual environment in .venv, and Homeline installed into it (editable).
# Idempotent: each step is skipped when already done. The heavy artefacts (the
# Asterisk root, the pjsua2 wheel, the prompts) are made by `homeline setup`.
set -euo pipefail
# Everything here is progress, including what apt-get/dpkg and pip print (dpkg's
# "Selecting previously unselected package" lines come on stdout even with -qq):
# stdout belongs to the command run afterwards (`./run demo --json` is JSON only).
exec 1>&2
cd "$(dirname "$0")/.."

say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

mapfile -t wanted < <(grep -v '^\s*#' scripts/apt-packages.txt | grep -v '^\s*$')
# installed packages and what they provide: NodeSource's nodejs provides (and
# conflicts with) Debian's npm, so npm counts as present where that nodejs is
declare -A have=()
while read -r name; do have[$name]=1; done < <(
  dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Provides}\n' 2>/dev/null |
    awk -F'|' '$1 ~ /^ii/ { print $2; n = split($3, p, ","); for (i = 1; i <= n; i++) {
      sub(/^ +/, "", p[i]); sub(/ .*/, "", p[i]); if (p[i] != "") print p[i] } }')
missing=()
for pkg in "${wanted[@]}"; do
  [ -n "${have[$pkg]:-}" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  sudo_if_needed apt-get update -qq
  sudo_if_needed apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"
else
  say "host packages: all ${#wanted[@]} present"
fi

PY=${HOMELINE_PYTHON:-python3}
stamp=.venv/.homeline-installed
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing Homeline and its Python dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
else
  say ".venv: up to date"
fi
