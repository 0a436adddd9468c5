#!/usr/bin/env bash
# build-deb.sh - build the smtp-probe Debian packages.
#
#   bash packaging/build-deb.sh [--ref REF] [--lintian] OUTDIR
#
# Debian expects debian/ at the source root; we keep it in packaging/debian/.
# This script copies the source tree to a temporary directory, places
# packaging/debian/ at its root as debian/, runs
# `dpkg-buildpackage -us -uc -b` there and moves the results (.deb,
# .buildinfo, .changes) into OUTDIR. The repository itself is not touched.
#
#   (default)   copy the working tree: tracked files plus untracked files
#               that .gitignore does not exclude (build-*/ never comes along)
#   --ref REF   copy the committed tree of REF instead (`git archive`), i.e.
#               exactly a clean checkout of REF
#   --lintian   run lintian on the .changes afterwards and fail on errors
#               or warnings that are not overridden
#
# Needs: dpkg-dev, debhelper, fakeroot and the Build-Depends of
# packaging/debian/control (scripts/install-deps.sh installs them all).
# The temporary directory is removed at the end (SP_KEEP_TMP=1 keeps it).
set -euo pipefail

usage() {
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

ref=
run_lintian=0
while [ $# -gt 0 ]; do
  case "$1" in
    --ref) ref=${2:?--ref needs a value}; shift 2 ;;
    --lintian) run_lintian=1; shift ;;
    -h|--help) usage ;;
    -*) echo "build-deb.sh: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage
mkdir -p "$1"
out=$(cd "$1" && pwd)

top=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$top/packaging/debian" ] || { echo "build-deb.sh: $top/packaging/debian missing" >&2; exit 1; }

work=$(mktemp -d /tmp/smtp-probe-deb.XXXXXX)
cleanup() {
  if [ "${SP_KEEP_TMP:-0}" = 1 ]; then echo "build-deb.sh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The source package directory: NAME-VERSION, as dpkg-source likes it.
version=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
src=$work/smtp-probe-$version
mkdir -p "$src"

if [ -n "$ref" ]; then
  git -C "$top" archive --format=tar "$ref" | tar -x -C "$src"
  echo "build-deb.sh: source = git archive $ref"
elif git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$top" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -x -C "$src"
  echo "build-deb.sh: source = working tree of $top"
else
  tar -C "$top" --exclude='./build*' --exclude='./demo-run' -cf - . | tar -x -C "$src"
  echo "build-deb.sh: source = directory $top (not a git repository)"
fi

rm -rf "$src/debian"
cp -a "$src/packaging/debian" "$src/debian"

(cd "$src" && dpkg-buildpackage -us -uc -b)

changes=$(ls "$work"/smtp-probe_"$version"_*.changes)
for f in "$work"/*.deb "$work"/*.ddeb "$work"/*.buildinfo "$changes"; do
  [ -e "$f" ] && mv "$f" "$out/"
done
echo "build-deb.sh: packages in $out:"
ls -1 "$out"/*.deb

if [ "$run_lintian" = 1 ]; then
  # --fail-on error,warning: justified tags are overridden in
  # packaging/debian/*.lintian-overrides (see packaging/README.md).
  lintian --fail-on error,warning --info --display-info "$out/$(basename "$changes")"
  echo "build-deb.sh: lintian clean (errors and warnings)"
fi
