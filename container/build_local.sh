#!/usr/bin/env bash
# Build the roomkit serving image on this machine without a Docker engine, run it as SageMaker
# runs it, and check it.
#
#   container/build_local.sh [--tag TAG] [--run-as-user UID] [--no-check] [--report FILE]
#
# Needs root and Debian's buildah (apt-get install buildah mmdebstrap; mmdebstrap only for the
# first build). Prints progress on stderr and, last, the image tag on stdout.
#
# 1. A stand-in for the official python:3.11-slim-bookworm base (which cannot be pulled here) is
#    built once and kept in buildah's storage: Debian bookworm (mmdebstrap, minbase) with Debian's
#    python3.11, `python` -> python3.11, Debian's EXTERNALLY-MANAGED marker removed, pip upgraded
#    to 24.0 (as in the official image) in /usr/local, PATH with /usr/local/bin and /usr/sbin
#    first, and PIP_CERT pointing at the CA bundle that builds mount from this machine. The
#    mmdebstrap tarball is cached in $ROOMKIT_IMAGE_CACHE (default ~/.cache/roomkit-image).
# 2. container/Dockerfile is built from the repository root exactly as a release builds it
#    (same file, context and .dockerignore, linux/amd64, Docker v2 media types), with
#    `buildah bud --isolation chroot --network host`, the base passed as
#    --build-arg PYTHON_IMAGE=..., and this machine's CA bundle mounted read-only so that pip
#    reaches the package index this machine's pip uses (PIP_INDEX_URL or pip's global.index-url
#    when set to an http(s) URL, else PyPI).
# 3. Unless --no-check: `python -m roomkit.serving.image_check` runs the image in a private network
#    namespace as SageMaker does (`serve`, the model read-only at /opt/ml/model, 0.0.0.0:8080)
#    and checks /ping, real plans and a PDF against the local server, bad input, config.json,
#    the model's readability for the image's user, SIGTERM draining and the non-root variant.
#    The release path stays container/build_and_push.sh.
set -euo pipefail

HERE="${BASH_SOURCE[0]%/*}"; [ "$HERE" != "${BASH_SOURCE[0]}" ] || HERE=.
ROOT="$(cd "$HERE/.." && pwd)"
TAG="localhost/roomkit:local-build"
RUN_AS_USER=""
CHECK=1
REPORT=""
CACHE="${ROOMKIT_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/roomkit-image}"
PY="${ROOMKIT_PYTHON:-}"
# The stand-in base's recipe; any change gives the base a new tag (and a rebuild).
BASE_RECIPE="r1 bookworm minbase python3.11,python3.11-venv,python3-pip,ca-certificates,passwd pip==24.0"

die() { echo "build_local: error: $*" >&2; exit 1; }
say() { echo "build_local: $*" >&2; }

while [ "$#" -gt 0 ]; do
  case "$1" in
    -t|--tag) TAG="${2:?--tag needs a value}"; shift 2 ;;
    --run-as-user) RUN_AS_USER="${2:?--run-as-user needs a uid}"; shift 2 ;;
    --no-check) CHECK=0; shift ;;
    --report) REPORT="${2:?--report needs a file}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case "$RUN_AS_USER" in ''|0) ;; *[!0-9]*) die "--run-as-user takes a numeric uid, not '$RUN_AS_USER'" ;; esac

# ---- preflight -----------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "needs root (buildah with the vfs driver and chroot isolation); run it with sudo"
command -v buildah >/dev/null 2>&1 || die "buildah not found on PATH: apt-get install buildah mmdebstrap"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="$(command -v python3 || true)"; fi
fi
[ -n "$PY" ] && "$PY" -c "import roomkit.serving.image_check" 2>/dev/null \
  || die "no Python with roomkit installed (run 'make venv', or set ROOMKIT_PYTHON)"
B=(buildah --storage-driver vfs)

# What this machine's pip uses: the CA bundle (mounted into builds) and an http(s) index URL.
pip_config() { "$PY" -m pip config get "$1" 2>/dev/null || true; }
CERT="${PIP_CERT:-$(pip_config global.cert)}"; CERT="${CERT:-/etc/ssl/certs/ca-certificates.crt}"
[ -f "$CERT" ] || die "no CA bundle at $CERT (set PIP_CERT to this machine's bundle)"
INDEX="${PIP_INDEX_URL:-$(pip_config global.index-url)}"
case "$INDEX" in http://*|https://*) ;; *) INDEX="" ;; esac
MOUNT_CERT=(--volume "$CERT:/etc/ssl/certs/ca-certificates.crt:ro")

mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock 9  # one build at a time on this machine (the base is shared)

# ---- 1. the stand-in base, once --------------------------------------------------------------------
RECIPE_ID="$(printf '%s %s' "$BASE_RECIPE" "$INDEX" | sha256sum | cut -c1-12)"
BASE="localhost/roomkit-base:python3.11-bookworm-pip24.0-${RECIPE_ID}"
if "${B[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
  say "stand-in base: $BASE (cached)"
else
  started=$SECONDS
  TARBALL="$CACHE/bookworm-minbase-${RECIPE_ID}.tar"
  if [ ! -s "$TARBALL" ]; then
    command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap not found on PATH: apt-get install mmdebstrap"
    say "debootstrapping Debian bookworm with python3.11 into $TARBALL (once; a few minutes)"
    mmdebstrap --quiet --variant=minbase \
      --include=python3.11,python3.11-venv,python3-pip,ca-certificates,passwd \
      bookworm "$TARBALL.part" >&2 || die "mmdebstrap failed (is Debian's package registry reachable?)"
    mv "$TARBALL.part" "$TARBALL"
  fi
  say "importing the stand-in base"
  ctr="$("${B[@]}" from scratch)"
  trap '"${B[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
  "${B[@]}" add "$ctr" "$TARBALL" / >/dev/null
  ENVS=(--env "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin" --env LANG=C.UTF-8
        --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
  [ -z "$INDEX" ] || ENVS+=(--env "PIP_INDEX_URL=$INDEX")
  "${B[@]}" config "${ENVS[@]}" --cmd python3 "$ctr"
  "${B[@]}" run --isolation chroot --network host "${MOUNT_CERT[@]}" "$ctr" -- /bin/sh -ec '
    ln -sf /usr/bin/python3.11 /usr/local/bin/python3
    ln -sf python3 /usr/local/bin/python
    rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
    python -m pip install --quiet --no-cache-dir --disable-pip-version-check --root-user-action=ignore pip==24.0
    pip --version | grep -q "^pip 24\.0 from /usr/local/" || { pip --version; echo "pip 24.0 is not first on PATH" >&2; exit 1; }
  ' >&2 || die "could not finish the stand-in base (pip upgrade)"
  "${B[@]}" commit --quiet --format docker --rm "$ctr" "$BASE" >/dev/null
  trap - EXIT
  say "stand-in base $BASE built in $((SECONDS - started)) s"
fi

# ---- 2. the image, from container/Dockerfile -------------------------------------------------------
ARGS=(--build-arg "PYTHON_IMAGE=$BASE")
[ -z "$RUN_AS_USER" ] || ARGS+=(--build-arg "RUN_AS_USER=$RUN_AS_USER")
DIGEST="$("$PY" -m roomkit.serving.image_local source-digest "$ROOT")"
OLD_ID="$("${B[@]}" inspect --type image --format '{{.FromImageID}}' "$TAG" 2>/dev/null || true)"
say "building $TAG from container/Dockerfile on the stand-in base"
started=$SECONDS
"${B[@]}" bud --isolation chroot --network host "${MOUNT_CERT[@]}" \
  --platform linux/amd64 --format docker --pull-never \
  "${ARGS[@]}" --label "org.roomkit.source-digest=$DIGEST" \
  -f "$ROOT/container/Dockerfile" -t "$TAG" "$ROOT" >&2 || die "the image build failed (see above)"
BUILD_SECONDS=$((SECONDS - started))
NEW_ID="$("${B[@]}" inspect --type image --format '{{.FromImageID}}' "$TAG")"
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$NEW_ID" ]; then
  "${B[@]}" rmi "$OLD_ID" >/dev/null 2>&1 || true  # the previous build of this tag, now untagged
fi
SIZE="$("$PY" -m roomkit.serving.image_local size "$TAG")"
say "built $TAG in ${BUILD_SECONDS} s; image size $((SIZE / 1000000)) MB ($SIZE bytes, uncompressed)"

# ---- 3. run it as SageMaker does, and check it --------------------------------------------------------
if [ "$CHECK" = 1 ]; then
  CHECK_ARGS=(--tag "$TAG" --expect-user "${RUN_AS_USER:-0}" --build-seconds "$BUILD_SECONDS")
  [ -z "$REPORT" ] || CHECK_ARGS+=(--report "$REPORT")
  "$PY" -m roomkit.serving.image_check "${CHECK_ARGS[@]}" >&2 || die "the image failed its checks (see above)"
fi
echo "$TAG"
