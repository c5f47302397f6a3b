#!/bin/bash
set -euo pipefail
# GPU training node bootstrap (EC2 user data, run once as root by cloud-init) for AWS Deep Learning
# AMIs (GPU, PyTorch) on Amazon Linux 2023 or Ubuntu. constructs/user_data.py inserts the parameters
# as readonly variables right after the `set` line; the checks below stop an unrendered copy early.
: "${REGION:?REGION is not set: render this script with constructs/user_data.py}"
: "${CLUSTER_NAME:?CLUSTER_NAME is not set}" "${DATA_BUCKET:?DATA_BUCKET is not set}"
: "${DATA_PREFIX?DATA_PREFIX is not set}" "${CHECKPOINT_BUCKET:?CHECKPOINT_BUCKET is not set}"
: "${ARTIFACTS_BUCKET:?ARTIFACTS_BUCKET is not set}" "${ASG_NAME:?ASG_NAME is not set}"
: "${LIFECYCLE_HOOK_NAME:?LIFECYCLE_HOOK_NAME is not set}" "${METRICS_NAMESPACE?METRICS_NAMESPACE is not set}"
: "${CHECKPOINT_GRACE_SECONDS:?CHECKPOINT_GRACE_SECONDS is not set}"

# The console copy makes a failed boot diagnosable with `aws ec2 get-console-output`.
exec > >(tee -a /var/log/ml-training-bootstrap.log | logger -t ml-training-bootstrap -s 2>/dev/console) 2>&1
shopt -s inherit_errexit
export HOME="${HOME:-/root}" PATH="$PATH:/usr/local/bin:/snap/bin" AWS_DEFAULT_REGION="$REGION"

readonly LIB_DIR=/usr/local/lib/ml-training ENV_FILE=/etc/ml-training.env
readonly WATCHER=/usr/local/sbin/ml-training-interruption-watcher
readonly CHECKPOINT_PREFIX="checkpoints/${CLUSTER_NAME}/"
readonly CHECKPOINT_S3_URI="s3://${CHECKPOINT_BUCKET}/${CHECKPOINT_PREFIX}"
readonly ARTIFACTS_S3_URI="s3://${ARTIFACTS_BUCKET}/artifacts/${CLUSTER_NAME}/"
if [[ -n $DATA_PREFIX ]]; then DATA_S3_URI="s3://${DATA_BUCKET}/${DATA_PREFIX%/}/"; else DATA_S3_URI="s3://${DATA_BUCKET}/"; fi
readonly DATA_S3_URI TRAINING_PID_FILE=/run/ml-training/training.pid

# Shared with the watcher so both speak IMDSv2 the same way.
mkdir -p "$LIB_DIR"
cat >"$LIB_DIR/common.sh" <<'EOF'
LOG_TAG=${LOG_TAG:-ml-training}
log() { printf '%s [%s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$LOG_TAG" "$*" >&2; }
# IMDSv2 only: every read first gets a session token, so http_tokens=required works.
imds_get() {
  local token
  token=$(curl -sSf --max-time 5 --retry 3 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' \
    http://169.254.169.254/latest/api/token) || return 1
  curl -sf --max-time 5 -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/$1"
}
retry() {
  local attempts=$1 n=1
  shift
  until "$@"; do
    if (( n >= attempts )); then log "giving up after $n attempts: $*"; return 1; fi
    log "attempt $n failed, retrying: $*"
    sleep $(( n * 10 ))
    n=$(( n + 1 ))
  done
}
EOF
LOG_TAG=bootstrap
# shellcheck source=/dev/null
source "$LIB_DIR/common.sh"
fail() { log "FATAL: $*"; exit 1; }
set -o errtrace
trap 'rc=$?; log "FATAL: bootstrap failed at line $LINENO (exit $rc)"' ERR

INSTANCE_ID=$(imds_get meta-data/instance-id) || fail "cannot read instance-id from IMDSv2"
readonly INSTANCE_ID
log "bootstrapping $INSTANCE_ID for cluster $CLUSTER_NAME (ASG $ASG_NAME, region $REGION)"

if command -v dnf >/dev/null 2>&1; then PKG=dnf; elif command -v apt-get >/dev/null 2>&1; then PKG=apt; else PKG=none; fi
APT_UPDATED=0
pkg_install() {
  case $PKG in
    dnf) dnf install -y -q "$@" ;;
    apt)
      if (( APT_UPDATED == 0 )); then apt-get update -q && APT_UPDATED=1; fi
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" ;;
    *) log "no supported package manager to install $*"; return 1 ;;
  esac
}

if ! command -v aws >/dev/null 2>&1; then
  log "installing the AWS CLI"
  if [[ $PKG == dnf ]]; then pkg_install awscli-2
  elif command -v snap >/dev/null 2>&1; then snap install aws-cli --classic
  else pkg_install awscli; fi
fi
command -v aws >/dev/null 2>&1 || fail "the AWS CLI is not available"
# Large datasets: the default 10 parallel requests leave most of a GPU instance's bandwidth unused.
aws configure set default.s3.max_concurrent_requests 64

verify_gpu() {
  command -v nvidia-smi >/dev/null 2>&1 \
    || fail "nvidia-smi not found: this AMI has no NVIDIA driver (use a GPU Deep Learning AMI)"
  local gpus="" attempt
  # The driver can still be initialising this early in boot.
  for attempt in 1 2 3 4 5 6; do
    if gpus=$(nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader 2>&1) \
      && [[ -n $gpus ]]; then break; fi
    log "nvidia-smi not ready (attempt $attempt/6): $gpus"
    gpus=""
    sleep 10
  done
  [[ -n $gpus ]] || fail "no NVIDIA GPU is visible: check the instance type (g*/p*) and 'dmesg | grep -i nvidia'"
  GPU_COUNT=$(wc -l <<<"$gpus")
  CUDA_VERSION=$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p')
  [[ -n $CUDA_VERSION ]] || fail "the NVIDIA driver reports no CUDA version"
  log "driver supports CUDA $CUDA_VERSION; $GPU_COUNT GPU(s):"$'\n'"$gpus"
}

find_torch_python() {
  local py
  # OSS-driver DLAMIs ship a venv in /opt/pytorch, older conda DLAMIs a conda env.
  for py in /opt/pytorch/bin/python3 /opt/conda/envs/pytorch/bin/python3 /opt/ml-training/venv/bin/python3 \
    /usr/bin/python3; do
    if [[ -x $py ]] && "$py" -c 'import torch' >/dev/null 2>&1; then
      printf '%s\n' "$py"
      return 0
    fi
  done
  return 1
}

setup_pytorch() {
  if ! TRAINING_PYTHON=$(find_torch_python); then
    log "no PyTorch on this AMI; installing it into /opt/ml-training/venv"
    [[ $PKG == apt ]] && pkg_install python3-venv
    python3 -m venv /opt/ml-training/venv
    retry 3 /opt/ml-training/venv/bin/pip install --quiet torch
    TRAINING_PYTHON=/opt/ml-training/venv/bin/python3
  fi
  "$TRAINING_PYTHON" - <<'PY' || fail "PyTorch ($TRAINING_PYTHON) cannot use the GPU: torch.cuda.is_available() is False"
import sys

import torch

available = torch.cuda.is_available()
count = torch.cuda.device_count() if available else 0
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}): cuda available={available}, devices={count}")
sys.exit(0 if available else 1)
PY
}

instance_store_devices() {
  local link
  for link in /dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_*; do
    [[ -e $link && $link != *-part* ]] || continue
    readlink -f "$link"
  done | sort -u | while read -r dev; do
    if [[ -z $(lsblk -no MOUNTPOINT "$dev" | tr -d '[:space:]') ]]; then printf '%s\n' "$dev"; fi
  done
}

# Instance store is fastest for data loading; it is wiped on stop, which is fine for a cache and
# for checkpoints that are synced to S3 before the node goes away.
setup_storage() {
  ML_ROOT=/opt/ml-training
  if mountpoint -q /opt/dlami/nvme; then
    ML_ROOT=/opt/dlami/nvme/ml-training
  else
    local devices target fs=ext4 mnt=/mnt/ml-scratch
    mapfile -t devices < <(instance_store_devices)
    if (( ${#devices[@]} > 0 )); then
      target=${devices[0]}
      if (( ${#devices[@]} > 1 )) && command -v mdadm >/dev/null 2>&1; then
        mdadm --create /dev/md/ml-scratch --run --level=0 --raid-devices="${#devices[@]}" "${devices[@]}"
        target=/dev/md/ml-scratch
      fi
      if command -v mkfs.xfs >/dev/null 2>&1; then fs=xfs; mkfs.xfs -f -q "$target"; else mkfs.ext4 -F -q "$target"; fi
      mkdir -p "$mnt"
      mount -o noatime "$target" "$mnt"
      echo "UUID=$(blkid -s UUID -o value "$target") $mnt $fs defaults,noatime,nofail 0 2" >>/etc/fstab
      ML_ROOT=$mnt/ml-training
      log "instance store ${devices[*]} mounted at $mnt ($fs)"
    else
      log "no instance store; using the root volume"
    fi
  fi
  DATA_DIR=$ML_ROOT/data
  CHECKPOINT_DIR=$ML_ROOT/checkpoints
  mkdir -p "$DATA_DIR" "$CHECKPOINT_DIR"
  TRAINING_USER=root
  local user
  for user in ec2-user ubuntu; do
    if id "$user" >/dev/null 2>&1; then TRAINING_USER=$user; break; fi
  done
  chown -R "$TRAINING_USER" "$ML_ROOT"
  # /run is cleared on reboot, so a stale PID can never point the watcher at an unrelated process.
  echo "d /run/ml-training 0755 $TRAINING_USER - -" >/etc/tmpfiles.d/ml-training.conf
  systemd-tmpfiles --create /etc/tmpfiles.d/ml-training.conf
}

env_line() {
  if [[ $2 == *[\"\\\$\`]* || $2 == *$'\n'* ]]; then
    fail "$1 contains characters that cannot go into $ENV_FILE: $2"
  fi
  printf '%s="%s"\n' "$1" "$2"
}

# Same file for training jobs (set -a; . /etc/ml-training.env) and systemd (EnvironmentFile=).
write_env_file() {
  {
    echo "# Written by the GPU node bootstrap ($(date -u +%Y-%m-%dT%H:%M:%SZ))."
    env_line REGION "$REGION"
    env_line AWS_DEFAULT_REGION "$REGION"
    env_line CLUSTER_NAME "$CLUSTER_NAME"
    env_line INSTANCE_ID "$INSTANCE_ID"
    env_line ASG_NAME "$ASG_NAME"
    env_line LIFECYCLE_HOOK_NAME "$LIFECYCLE_HOOK_NAME"
    env_line DATA_DIR "$DATA_DIR"
    env_line DATA_S3_URI "$DATA_S3_URI"
    env_line CHECKPOINT_DIR "$CHECKPOINT_DIR"
    env_line CHECKPOINT_S3_URI "$CHECKPOINT_S3_URI"
    env_line ARTIFACTS_S3_URI "$ARTIFACTS_S3_URI"
    env_line RESUME_FROM "$1"
    env_line TRAINING_PYTHON "${TRAINING_PYTHON:-}"
    env_line TRAINING_PID_FILE "$TRAINING_PID_FILE"
    env_line CHECKPOINT_GRACE_SECONDS "$CHECKPOINT_GRACE_SECONDS"
    env_line GPU_COUNT "$GPU_COUNT"
  } >"$ENV_FILE.tmp"
  chmod 0644 "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

install_watcher() {
  cat >"$WATCHER" <<'EOF'
#!/bin/bash
# Checkpoints and releases this node when Auto Scaling terminates it (termination lifecycle hook),
# on a spot interruption notice, or on SIGTERM at shutdown. Settings come from /etc/ml-training.env.
set -euo pipefail
LOG_TAG=interruption-watcher
# shellcheck source=/dev/null
source /usr/local/lib/ml-training/common.sh
: "${REGION:?}" "${ASG_NAME:?}" "${LIFECYCLE_HOOK_NAME:?}" "${INSTANCE_ID:?}" "${CHECKPOINT_DIR:?}"
: "${CHECKPOINT_S3_URI:?}" "${TRAINING_PID_FILE:?}" "${CHECKPOINT_GRACE_SECONDS:?}"
QUIET_SECONDS=10
DRAINED=0
COMPLETE_ATTEMPTS=0

# Asks the job to save (SIGUSR1), then waits until it has exited, or has written since the signal
# and gone quiet, or the grace period is over: a spot notice leaves about two minutes in total.
signal_training() {
  local pid marker waited=0
  if [[ ! -s $TRAINING_PID_FILE ]]; then log "no $TRAINING_PID_FILE: no training process to signal"; return 0; fi
  pid=$(<"$TRAINING_PID_FILE")
  if [[ ! $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then log "training process '$pid' is not running"; return 0; fi
  marker=$(mktemp)
  log "sending SIGUSR1 to training process $pid"
  kill -USR1 "$pid"
  while (( waited < CHECKPOINT_GRACE_SECONDS )); do
    sleep 2
    waited=$(( waited + 2 ))
    if ! kill -0 "$pid" 2>/dev/null; then log "training process exited after ${waited}s"; break; fi
    if [[ -n $(find "$CHECKPOINT_DIR" -newer "$marker" -print -quit) \
      && -z $(find "$CHECKPOINT_DIR" -newermt "$QUIET_SECONDS seconds ago" -print -quit) ]]; then
      log "checkpoint written after ${waited}s"; break
    fi
  done
  rm -f "$marker"
}

drain() {
  (( DRAINED )) && return 0
  DRAINED=1
  log "draining: $1"
  signal_training
  if retry 2 aws s3 sync "$CHECKPOINT_DIR" "$CHECKPOINT_S3_URI" --region "$REGION" --only-show-errors --exclude '*.tmp'; then
    log "checkpoints synced to $CHECKPOINT_S3_URI"
  else
    log "WARNING: checkpoint sync to $CHECKPOINT_S3_URI failed"
  fi
}

# Called only after the sync, so Auto Scaling cannot terminate the node mid-upload.
complete_lifecycle_action() {
  COMPLETE_ATTEMPTS=$(( COMPLETE_ATTEMPTS + 1 ))
  aws autoscaling complete-lifecycle-action --region "$REGION" --auto-scaling-group-name "$ASG_NAME" \
    --lifecycle-hook-name "$LIFECYCLE_HOOK_NAME" --instance-id "$INSTANCE_ID" --lifecycle-action-result CONTINUE \
    && log "completed lifecycle action $LIFECYCLE_HOOK_NAME"
}

on_sigterm() {
  drain "SIGTERM (shutdown)"
  complete_lifecycle_action || log "no pending lifecycle action to complete"
  exit 0
}
trap on_sigterm TERM

log "watching $INSTANCE_ID for termination and spot interruption"
while true; do
  state=$(imds_get meta-data/autoscaling/target-lifecycle-state || true)
  if [[ $state == Terminated ]]; then
    drain "Auto Scaling is terminating this instance"
    if complete_lifecycle_action; then exit 0; fi
    if (( COMPLETE_ATTEMPTS >= 5 )); then log "giving up on complete-lifecycle-action"; exit 1; fi
  elif notice=$(imds_get meta-data/spot/instance-action); then
    # Keep polling afterwards: Auto Scaling may still move the node to Terminating:Wait.
    drain "spot interruption notice $notice"
  fi
  sleep 5 &
  wait $!
done
EOF
  chmod 0755 "$WATCHER"
  cat >/etc/systemd/system/ml-training-interruption-watcher.service <<EOF
[Unit]
Description=Checkpoint and release the GPU training node on termination or spot interruption
Wants=network-online.target
After=network-online.target

[Service]
EnvironmentFile=$ENV_FILE
ExecStart=$WATCHER
Restart=on-failure
RestartSec=5
KillMode=mixed
TimeoutStopSec=$(( CHECKPOINT_GRACE_SECONDS + 120 ))
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
EOF
  systemctl daemon-reload
  systemctl enable --now ml-training-interruption-watcher.service
}

restore_latest_checkpoint() {
  local key rel entry
  # JSON output: with text output the CLI applies --query per page of 1000 keys, not to the whole listing.
  key=$(aws s3api list-objects-v2 --region "$REGION" --bucket "$CHECKPOINT_BUCKET" --prefix "$CHECKPOINT_PREFIX" \
    --query "sort_by(Contents[?!ends_with(Key, '/')] || \`[]\`, &LastModified)[-1].Key" --output json) \
    || fail "cannot list checkpoints under $CHECKPOINT_S3_URI"
  RESUME_FROM=""
  if [[ $key == null || -z $key ]]; then
    log "no checkpoint under $CHECKPOINT_S3_URI: starting from scratch"
    return 0
  fi
  key=${key#\"}
  key=${key%\"}
  rel=${key#"$CHECKPOINT_PREFIX"}
  # A checkpoint is the top-level entry holding the newest object: a directory or a single file.
  entry=${rel%%/*}
  if [[ $rel == */* ]]; then
    retry 3 aws s3 sync "$CHECKPOINT_S3_URI$entry/" "$CHECKPOINT_DIR/$entry/" --region "$REGION" --only-show-errors
  else
    retry 3 aws s3 cp "$CHECKPOINT_S3_URI$entry" "$CHECKPOINT_DIR/$entry" --region "$REGION" --only-show-errors
  fi
  chown -R "$TRAINING_USER" "$CHECKPOINT_DIR"
  RESUME_FROM="$CHECKPOINT_DIR/$entry"
  log "resuming from $CHECKPOINT_S3_URI$entry -> $RESUME_FROM"
}

configure_gpu_metrics() {
  if [[ -z $METRICS_NAMESPACE ]]; then log "METRICS_NAMESPACE is empty: GPU metrics disabled"; return 0; fi
  local ctl=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
  local config=/opt/aws/amazon-cloudwatch-agent/etc/ml-training-gpu.json arch
  if [[ ! -x $ctl ]]; then
    if [[ $PKG == dnf ]]; then
      pkg_install amazon-cloudwatch-agent || true
    elif [[ $PKG == apt ]]; then
      arch=$(dpkg --print-architecture)
      curl -sSf --retry 3 -o /tmp/amazon-cloudwatch-agent.deb \
        "https://amazoncloudwatch-agent-${REGION}.s3.${REGION}.amazonaws.com/ubuntu/${arch}/latest/amazon-cloudwatch-agent.deb" \
        && dpkg -i -E /tmp/amazon-cloudwatch-agent.deb || true
    fi
  fi
  if [[ ! -x $ctl ]]; then
    log "WARNING: CloudWatch agent unavailable: no GPU metrics, so the idle alarm will see no data"
    return 0
  fi
  mkdir -p "$(dirname "$config")"
  # Aggregating on AutoScalingGroupName alone gives one cluster-wide series an alarm can use.
  cat >"$config" <<EOF
{
  "agent": {"metrics_collection_interval": 60},
  "metrics": {
    "namespace": "$METRICS_NAMESPACE",
    "append_dimensions": {"AutoScalingGroupName": "\${aws:AutoScalingGroupName}", "InstanceId": "\${aws:InstanceId}"},
    "aggregation_dimensions": [["AutoScalingGroupName"]],
    "metrics_collected": {
      "nvidia_gpu": {
        "measurement": ["utilization_gpu", "utilization_memory", "memory_used", "memory_total"],
        "metrics_collection_interval": 60
      }
    }
  }
}
EOF
  "$ctl" -a fetch-config -m ec2 -s -c "file:$config"
  log "CloudWatch agent publishing nvidia_smi_utilization_gpu to $METRICS_NAMESPACE by AutoScalingGroupName"
}

verify_gpu
setup_storage
write_env_file ""
# Before the long steps, so a node terminated mid-bootstrap still releases its lifecycle hook.
install_watcher
setup_pytorch
log "syncing dataset $DATA_S3_URI -> $DATA_DIR"
retry 3 aws s3 sync "$DATA_S3_URI" "$DATA_DIR" --region "$REGION" --only-show-errors
chown -R "$TRAINING_USER" "$DATA_DIR"
log "dataset ready: $(du -sh "$DATA_DIR" | cut -f1)"
restore_latest_checkpoint
write_env_file "$RESUME_FROM"
configure_gpu_metrics
mkdir -p /var/lib/ml-training
touch /var/lib/ml-training/bootstrap-complete
log "bootstrap complete: environment in $ENV_FILE"
