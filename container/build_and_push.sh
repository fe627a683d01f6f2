#!/usr/bin/env bash
# Build the roomkit serving image for linux/amd64 and push it to ECR with a Docker v2 manifest.
#
#   container/build_and_push.sh [--repository NAME] [--tag TAG] [--region REGION]
#
# Prints progress on stderr and, last, the image URI on stdout, so
#   IMAGE_URI=$(container/build_and_push.sh --tag v1)
# captures it. Defaults: repository "roomkit", tag = git commit (with -dirty for local changes),
# region = AWS_REGION / AWS_DEFAULT_REGION / the CLI profile's region.
#
# Why the flags: SageMaker's CreateModel rejects OCI manifests ("Unsupported manifest media type
# application/vnd.oci.image.manifest.v1+json"). Recent BuildKit writes OCI media types by default
# and attaches provenance/SBOM attestations (which force an OCI index), so the build disables
# attestations (--provenance=false --sbom=false) and asks the image exporter for Docker media
# types (oci-mediatypes=false). The pushed manifest type is then checked through ECR before the
# URI is printed.
#
# Repairing an image that was already pushed as OCI (e.g. with plain `docker push` from a
# containerd image store): copy its linux/amd64 image onto a Docker v2 schema 2 manifest under
# a new tag, check it, and point the SageMaker model at that tag:
#   PW=$(aws ecr get-login-password --region $REGION)
#   skopeo copy --format v2s2 --override-os linux --override-arch amd64 \
#     --src-creds AWS:$PW --dest-creds AWS:$PW \
#     docker://$REGISTRY/roomkit:TAG docker://$REGISTRY/roomkit:TAG-v2s2
#   aws ecr describe-images --repository-name roomkit --image-ids imageTag=TAG-v2s2 \
#     --query 'imageDetails[0].imageManifestMediaType'   # application/vnd.docker.distribution.manifest.v2+json
set -euo pipefail

REPOSITORY="roomkit"
TAG=""
REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
PLATFORM="linux/amd64"
V2_MANIFEST="application/vnd.docker.distribution.manifest.v2+json"
HERE="${BASH_SOURCE[0]%/*}"; [ "$HERE" != "${BASH_SOURCE[0]}" ] || HERE=.
ROOT="$(cd "$HERE/.." && pwd)"

die() { echo "build_and_push: error: $*" >&2; exit 1; }
say() { echo "build_and_push: $*" >&2; }

while [ "$#" -gt 0 ]; do
  case "$1" in
    -r|--repository) REPOSITORY="${2:?--repository needs a value}"; shift 2 ;;
    -t|--tag) TAG="${2:?--tag needs a value}"; shift 2 ;;
    --region) REGION="${2:?--region needs a value}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

# ---- preflight: fail before building anything ---------------------------------------------------
command -v docker >/dev/null 2>&1 \
  || die "docker not found on PATH: install Docker Engine or Docker Desktop (https://docs.docker.com/get-docker/)"
docker buildx version >/dev/null 2>&1 \
  || die "docker buildx is missing: install the buildx plugin (https://github.com/docker/buildx#installing); the classic builder cannot write Docker v2 manifests reliably"
docker info >/dev/null 2>&1 \
  || die "cannot reach the Docker daemon: start Docker (or check DOCKER_HOST and your permissions on its socket)"
command -v aws >/dev/null 2>&1 \
  || die "aws CLI not found on PATH: install AWS CLI v2 (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)"
ACCOUNT="$(aws sts get-caller-identity --query Account --output text 2>/dev/null)" \
  || die "no usable AWS credentials: configure them (aws configure / aws sso login / AWS_PROFILE) and retry"
if [ -z "$REGION" ]; then REGION="$(aws configure get region 2>/dev/null || true)"; fi
[ -n "$REGION" ] || die "no AWS region: pass --region or set AWS_REGION"
if [ -z "$TAG" ]; then
  TAG="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo latest)"
  if [ "$TAG" != latest ] && [ -n "$(git -C "$ROOT" status --porcelain -- lib pyproject.toml container 2>/dev/null)" ]; then
    TAG="${TAG}-dirty"
  fi
fi

case "$REGION" in cn-*) DOMAIN="amazonaws.com.cn" ;; *) DOMAIN="amazonaws.com" ;; esac
REGISTRY="${ACCOUNT}.dkr.ecr.${REGION}.${DOMAIN}"
URI="${REGISTRY}/${REPOSITORY}:${TAG}"

# ---- repository and login ------------------------------------------------------------------------
if ! aws ecr describe-repositories --region "$REGION" --repository-names "$REPOSITORY" >/dev/null 2>&1; then
  say "creating ECR repository ${REPOSITORY} in ${REGION}"
  aws ecr create-repository --region "$REGION" --repository-name "$REPOSITORY" \
    --image-scanning-configuration scanOnPush=true --image-tag-mutability MUTABLE >/dev/null \
    || die "cannot create ECR repository ${REPOSITORY} (needs ecr:CreateRepository)"
fi
aws ecr get-login-password --region "$REGION" \
  | docker login --username AWS --password-stdin "$REGISTRY" >/dev/null \
  || die "docker login to ${REGISTRY} failed"

# ---- build and push with Docker v2 media types ---------------------------------------------------
say "building ${URI} for ${PLATFORM}"
docker buildx build \
  --platform "$PLATFORM" \
  --provenance=false \
  --sbom=false \
  --file "$ROOT/container/Dockerfile" \
  --output "type=image,name=${URI},push=true,oci-mediatypes=false" \
  "$ROOT" >&2 \
  || die "docker buildx build failed"

# ---- verify what ECR stored before anyone points a SageMaker model at it -------------------------
MEDIA_TYPE="$(aws ecr describe-images --region "$REGION" --repository-name "$REPOSITORY" \
  --image-ids imageTag="$TAG" --query 'imageDetails[0].imageManifestMediaType' --output text)" \
  || die "cannot describe ${URI} in ECR"
if [ "$MEDIA_TYPE" != "$V2_MANIFEST" ]; then
  die "ECR stored ${URI} with manifest type ${MEDIA_TYPE}; SageMaker needs ${V2_MANIFEST}.
  Repair: skopeo copy --format v2s2 --override-os linux --override-arch amd64 docker://${URI} docker://${URI}-v2s2
  (with --src-creds/--dest-creds AWS:\$(aws ecr get-login-password); see the header of this script)"
fi
say "pushed ${URI} (${MEDIA_TYPE})"
echo "$URI"
