#!/usr/bin/env bash
# Vendor Chart.js for the portal from the npm registry. Run once at development time when
# upgrading; the result is committed under portal/static/portal/vendor/, so nothing is
# fetched at run time or in CI.
#
#   scripts/vendor_chartjs.sh            # the pinned version below
#   CHARTJS_VERSION=4.6.2 CHARTJS_INTEGRITY=sha512-... scripts/vendor_chartjs.sh
#
# The tarball's integrity is checked against the pin (npm also checks the registry's).
# The trailing sourceMappingURL line is removed: the .map is not vendored, and Django's
# manifest storage (collectstatic) fails on a source map it cannot find.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${CHARTJS_VERSION:-4.6.1}"
INTEGRITY="${CHARTJS_INTEGRITY:-sha512-hJyniucsFmq//EvXYvJ6c6mahPoI3kaxdjVH8awTaJ/fDNWeSqqqArixMJWkWNN6fcYvPU3HneSANFNYtRi61g==}"
DEST=portal/static/portal/vendor

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "chart.js@${VERSION}" >/dev/null)
tarball="$work/chart.js-${VERSION}.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "vendor_chartjs: integrity mismatch for chart.js@${VERSION}: got $actual" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work"
mkdir -p "$DEST"
grep -v '^//# sourceMappingURL=' "$work/package/dist/chart.umd.min.js" > "$DEST/chart.umd.min.js"
cp "$work/package/LICENSE.md" "$DEST/chart.js.LICENSE.md"
printf 'chart.js %s\n%s\nfrom the npm registry by scripts/vendor_chartjs.sh\n' "$VERSION" "$INTEGRITY" > "$DEST/chart.js.VERSION"
echo "vendored chart.js ${VERSION} into $DEST"
