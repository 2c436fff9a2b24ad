#!/usr/bin/env bash
# System tools some tests use: Debian's Chromium (Prefect UI browser test), docker-compose
# (validates docker-compose.yml without an engine) and setpriv (util-linux: permission tests as
# root). Installed with apt-get when run as root. A failed install fails this script (and so
# `make test`): a missing tool would otherwise turn into a skipped test. Without root or apt the
# tools cannot be installed here: on CI (CI=true) that is an error, elsewhere a warning (the tests
# that need them skip and say why; on CI a skip is a failure, see tests/conftest.py).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  message="missing test tools: ${missing[*]}; install them (e.g. sudo apt-get install -y ${missing[*]})"
  ci=${CI:-}
  case "${ci,,}" in
    1 | true | yes)
      echo "error: $message" >&2
      exit 1
      ;;
  esac
  echo "warning: $message; the tests that need them will skip" >&2
  exit 0
fi

if ! apt-get update -qq; then
  echo "error: apt-get update failed; cannot install ${missing[*]}" >&2
  exit 1
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; then
  echo "error: apt-get install ${missing[*]} failed; the tests that need them cannot run" >&2
  exit 1
fi
for tool in chromium docker-compose setpriv; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is still missing after apt-get install" >&2; exit 1; }
done
