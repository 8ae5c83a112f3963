#!/usr/bin/env bash
# System packages, installed with apt when missing (and when we are root).
#   runtime: what the PDF sheets need (Pango and the DejaVu fonts, for WeasyPrint);
#   test:    runtime + PostgreSQL (register tests), Debian's Chromium (browser tests) and
#            poppler-utils (PDF pages checked as images and text).
set -euo pipefail
mode="${1:-test}"
need=()
for pkg in libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "$mode" = "test" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  [ -x /usr/bin/chromium ] || need+=(chromium)
  command -v pdftoppm >/dev/null || need+=(poppler-utils)
fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "missing system packages: ${need[*]} (install them with: sudo apt-get install ${need[*]})" >&2
  exit 0
fi
echo "==> installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
