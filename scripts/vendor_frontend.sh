#!/usr/bin/env bash
# Copy the pinned browser bundles (MapLibre GL, deck.gl) from frontend/node_modules into
# maillage/delivery/web/vendor/<package>-<version>/ so that the web app runs offline with no
# build step. Run after `npm ci` in frontend/; commit the copied files.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
modules="$root/frontend/node_modules"
vendor="$root/maillage/delivery/web/vendor"

if [ ! -d "$modules" ]; then
  echo "frontend/node_modules is missing: run 'npm ci' in $root/frontend first" >&2
  exit 1
fi

version_of() {
  node -p "require('$modules/$1/package.json').version"
}

copy_bundle() {
  local package="$1"; shift
  local version target
  version="$(version_of "$package")"
  target="$vendor/$package-$version"
  rm -rf "$vendor/$package"-*
  mkdir -p "$target"
  for file in "$@"; do
    cp "$modules/$package/$file" "$target/"
  done
  echo "vendored $package $version -> ${target#"$root"/}"
}

mkdir -p "$vendor"
copy_bundle maplibre-gl dist/maplibre-gl.js dist/maplibre-gl.css LICENSE.txt
copy_bundle deck.gl dist.min.js LICENSE
copy_bundle swagger-ui-dist swagger-ui-bundle.js swagger-ui.css LICENSE
