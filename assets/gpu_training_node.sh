#!/bin/bash
set -euo pipefail
# GPU training node bootstrap (EC2 user data) for AWS Deep Learning AMIs (GPU, PyTorch), Amazon Linux
# 2023 or Ubuntu. constructs/training/user_data.py inserts the parameters after the `set` line.
for _v in REGION CLUSTER_NAME DATA_BUCKET CHECKPOINT_BUCKET ARTIFACTS_BUCKET ASG_NAME LIFECYCLE_HOOK_NAME \
  CHECKPOINT_GRACE_SECONDS; do
  [[ -n ${!_v:-} ]] || { echo "$_v is not set: render this script with constructs/training/user_data.py" >&2; exit 1; }
done
: "${DATA_PREFIX?}" "${METRICS_NAMESPACE?}"

readonly LIB_DIR=/usr/local/lib/ml-training ENV_FILE=/etc/ml-training.env
readonly WATCHER=/usr/local/sbin/ml-training-interruption-watcher
readonly CHECKPOINT_PREFIX="checkpoints/${CLUSTER_NAME}/"
readonly CHECKPOINT_S3_URI="s3://${CHECKPOINT_BUCKET}/${CHECKPOINT_PREFIX}"
# shellcheck disable=SC2034 # read through ${!name} in write_env_file
readonly ARTIFACTS_S3_URI="s3://${ARTIFACTS_BUCKET}/artifacts/${CLUSTER_NAME}/" TRAINING_PID_FILE=/run/ml-training/training.pid
if [[ -n $DATA_PREFIX ]]; then DATA_S3_URI="s3://${DATA_BUCKET}/${DATA_PREFIX%/}/"; else DATA_S3_URI="s3://${DATA_BUCKET}/"; fi
readonly DATA_S3_URI
LOG_TAG=bootstrap
PKG=none

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
fail() { log "FATAL: $*"; exit 1; }

pkg_install() {
  case $PKG in
    dnf) dnf install -y -q "$@" ;;
    apt) apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" ;;
    *) log "no supported package manager to install $*"; return 1 ;;
  esac
}

verify_gpu() {
  command -v nvidia-smi >/dev/null 2>&1 || fail "nvidia-smi not found: no NVIDIA driver (use a GPU Deep Learning AMI)"
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

setup_pytorch() {
  local py
  TRAINING_PYTHON=""
  # OSS-driver DLAMIs ship a venv in /opt/pytorch, older ones a conda env.
  for py in /opt/pytorch/bin/python3 /opt/conda/envs/pytorch/bin/python3 /opt/ml-training/venv/bin/python3; do
    if [[ -x $py ]] && "$py" -c 'import torch' >/dev/null 2>&1; then TRAINING_PYTHON=$py; break; fi
  done
  if [[ -z $TRAINING_PYTHON ]]; then
    log "no PyTorch on this AMI: installing it into /opt/ml-training/venv"
    if [[ $PKG == apt ]]; then pkg_install python3-venv; fi
    python3 -m venv /opt/ml-training/venv
    retry 3 /opt/ml-training/venv/bin/pip install --quiet torch
    TRAINING_PYTHON=/opt/ml-training/venv/bin/python3
  fi
  "$TRAINING_PYTHON" -c 'import sys, torch; ok = torch.cuda.is_available(); print(f"torch {torch.__version__} \
CUDA {torch.version.cuda}: cuda available={ok}, devices={torch.cuda.device_count()}"); sys.exit(0 if ok else 1)' \
    || fail "PyTorch in $TRAINING_PYTHON cannot use the GPU: torch.cuda.is_available() is False"
}

instance_store_devices() {
  local link dev
  for link in /dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_*; do
    if [[ -e $link && $link != *-part* ]]; then readlink -f "$link"; fi
  done | sort -u | while read -r dev; do
    if [[ -z $(lsblk -no MOUNTPOINT "$dev" | tr -d '[:space:]') ]]; then echo "$dev"; fi
  done
}

# Instance store is fastest; losing it on stop is fine for a cache and for checkpoints synced to S3.
setup_storage() {
  local devices target fs=ext4 mnt=/mnt/ml-scratch user
  ML_ROOT=/opt/ml-training
  if mountpoint -q /opt/dlami/nvme; then
    ML_ROOT=/opt/dlami/nvme/ml-training
  else
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
      log "no instance store: using the root volume"
    fi
  fi
  DATA_DIR=$ML_ROOT/data
  CHECKPOINT_DIR=$ML_ROOT/checkpoints
  mkdir -p "$DATA_DIR" "$CHECKPOINT_DIR"
  TRAINING_USER=root
  for user in ec2-user ubuntu; do
    if id "$user" >/dev/null 2>&1; then TRAINING_USER=$user; break; fi
  done
  chown -R "$TRAINING_USER" "$ML_ROOT"
  # /run is emptied on reboot, so a stale PID file cannot make the watcher signal another process.
  echo "d /run/ml-training 0755 $TRAINING_USER - -" >/etc/tmpfiles.d/ml-training.conf
  systemd-tmpfiles --create /etc/tmpfiles.d/ml-training.conf
}

env_line() {
  if [[ $2 == *[\"\\\$\`]* || $2 == *$'\n'* ]]; then fail "$1 cannot be written to $ENV_FILE: $2"; fi
  printf '%s="%s"\n' "$1" "$2"
}

# One file for training jobs (set -a; . /etc/ml-training.env) and for systemd (EnvironmentFile=).
write_env_file() {
  local name RESUME_FROM=$1
  {
    echo "# Written by the GPU node bootstrap."
    for name in REGION AWS_DEFAULT_REGION CLUSTER_NAME INSTANCE_ID ASG_NAME LIFECYCLE_HOOK_NAME DATA_DIR DATA_S3_URI \
      CHECKPOINT_DIR CHECKPOINT_S3_URI ARTIFACTS_S3_URI RESUME_FROM TRAINING_PYTHON TRAINING_PID_FILE \
      CHECKPOINT_GRACE_SECONDS GPU_COUNT; do
      env_line "$name" "${!name:-}"
    done
  } >"$ENV_FILE.tmp"
  chmod 0644 "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

install_watcher() {
  declare -f log imds_get retry >"$LIB_DIR/common.sh"
  cat >"$WATCHER" <<'EOF'
#!/bin/bash
# Saves checkpoints to S3 and releases the node on Auto Scaling termination, spot notice or SIGTERM.
set -euo pipefail
# shellcheck disable=SC2034 # read by log()
LOG_TAG=interruption-watcher
# shellcheck source=/dev/null
source /usr/local/lib/ml-training/common.sh
: "${REGION:?}" "${ASG_NAME:?}" "${LIFECYCLE_HOOK_NAME:?}" "${INSTANCE_ID:?}" "${CHECKPOINT_DIR:?}"
: "${CHECKPOINT_S3_URI:?}" "${TRAINING_PID_FILE:?}" "${CHECKPOINT_GRACE_SECONDS:?}"
POLL_SECONDS=${POLL_SECONDS:-5} QUIET_SECONDS=${QUIET_SECONDS:-10} DRAINED=0 COMPLETE_ATTEMPTS=0

# SIGUSR1 asks the job to save; wait until it exits, or has written since the signal and gone quiet,
# or the grace period ends (a spot notice leaves about two minutes in all).
signal_training() {
  local pid marker waited=0
  if [[ ! -s $TRAINING_PID_FILE ]]; then log "no $TRAINING_PID_FILE: nothing to signal"; return 0; fi
  pid=$(<"$TRAINING_PID_FILE")
  if [[ ! $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then log "training process '$pid' is not running"; return 0; fi
  marker=$(mktemp)
  log "sending SIGUSR1 to training process $pid"
  kill -USR1 "$pid"
  while (( waited < CHECKPOINT_GRACE_SECONDS )); do
    sleep 1
    waited=$(( waited + 1 ))
    if ! kill -0 "$pid" 2>/dev/null; then log "training process exited after ${waited}s"; break; fi
    if [[ -n $(find "$CHECKPOINT_DIR" -newer "$marker" -print -quit) \
      && -z $(find "$CHECKPOINT_DIR" -newermt "$QUIET_SECONDS seconds ago" -print -quit) ]]; then
      log "checkpoint written after ${waited}s"; break
    fi
  done
  rm -f "$marker"
}

drain() {
  if (( DRAINED )); then return 0; fi
  DRAINED=1
  log "draining: $1"
  signal_training
  if retry 2 aws s3 sync "$CHECKPOINT_DIR" "$CHECKPOINT_S3_URI" --only-show-errors --exclude '*.tmp'
  then log "checkpoints synced to $CHECKPOINT_S3_URI"; else log "WARNING: checkpoint sync to $CHECKPOINT_S3_URI failed"; fi
}

# Only ever called after drain, so Auto Scaling cannot terminate the node mid-upload.
complete_lifecycle_action() {
  COMPLETE_ATTEMPTS=$(( COMPLETE_ATTEMPTS + 1 ))
  aws autoscaling complete-lifecycle-action --auto-scaling-group-name "$ASG_NAME" \
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
    # Keep polling: Auto Scaling may still move the node to Terminating:Wait.
    drain "spot interruption notice $notice"
  fi
  sleep "$POLL_SECONDS" &
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
  RESUME_FROM=""
  # JSON output: with text output the CLI applies --query to each 1000-key page, not to the whole listing.
  key=$(aws s3api list-objects-v2 --bucket "$CHECKPOINT_BUCKET" --prefix "$CHECKPOINT_PREFIX" \
    --query "sort_by(Contents[?!ends_with(Key, '/')] || \`[]\`, &LastModified)[-1].Key" --output json) \
    || fail "cannot list checkpoints under $CHECKPOINT_S3_URI"
  if [[ -z $key || $key == null ]]; then log "no checkpoint under $CHECKPOINT_S3_URI: starting fresh"; return 0; fi
  key=${key#\"}
  key=${key%\"}
  rel=${key#"$CHECKPOINT_PREFIX"}
  # A checkpoint is the top-level entry (directory or file) holding the newest object.
  entry=${rel%%/*}
  if [[ $rel == */* ]]; then
    retry 3 aws s3 sync "$CHECKPOINT_S3_URI$entry/" "$CHECKPOINT_DIR/$entry/" --only-show-errors
  else
    retry 3 aws s3 cp "$CHECKPOINT_S3_URI$entry" "$CHECKPOINT_DIR/$entry" --only-show-errors
  fi
  chown -R "$TRAINING_USER" "$CHECKPOINT_DIR"
  RESUME_FROM=$CHECKPOINT_DIR/$entry
  log "resuming from $CHECKPOINT_S3_URI$entry (local copy $RESUME_FROM)"
}

configure_gpu_metrics() {
  if [[ -z $METRICS_NAMESPACE ]]; then log "METRICS_NAMESPACE is empty: GPU metrics disabled"; return 0; fi
  local ctl=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
  local config=/opt/aws/amazon-cloudwatch-agent/etc/ml-training-gpu.json base
  if [[ ! -x $ctl && $PKG == dnf ]]; then
    pkg_install amazon-cloudwatch-agent || true
  elif [[ ! -x $ctl && $PKG == apt ]]; then
    base="https://amazoncloudwatch-agent-${REGION}.s3.${REGION}.amazonaws.com/ubuntu/$(dpkg --print-architecture)"
    if curl -sSf --retry 3 -o /tmp/cwagent.deb "$base/latest/amazon-cloudwatch-agent.deb"; then
      dpkg -i -E /tmp/cwagent.deb || true
    fi
  fi
  if [[ ! -x $ctl ]]; then log "WARNING: no CloudWatch agent, so no GPU metrics: the idle alarm sees no data"; return 0; fi
  mkdir -p "${config%/*}"
  # Aggregating on AutoScalingGroupName alone gives one cluster-wide series for the idle alarm.
  cat >"$config" <<EOF
{"agent": {"metrics_collection_interval": 60}, "metrics": {
  "namespace": "$METRICS_NAMESPACE",
  "append_dimensions": {"AutoScalingGroupName": "\${aws:AutoScalingGroupName}", "InstanceId": "\${aws:InstanceId}"},
  "aggregation_dimensions": [["AutoScalingGroupName"]],
  "metrics_collected": {"nvidia_gpu": {
    "measurement": ["utilization_gpu", "utilization_memory", "memory_used", "memory_total"]}}}}
EOF
  "$ctl" -a fetch-config -m ec2 -s -c "file:$config"
  log "CloudWatch agent publishes $METRICS_NAMESPACE nvidia_smi_utilization_gpu by AutoScalingGroupName"
}

main() {
  # The console copy makes a failed boot diagnosable with `aws ec2 get-console-output`.
  exec > >(tee -a /var/log/ml-training-bootstrap.log | logger -t ml-training-bootstrap -s 2>/dev/console) 2>&1
  shopt -s inherit_errexit
  set -o errtrace
  trap 'log "FATAL: bootstrap failed at line $LINENO (exit $?)"' ERR
  export HOME="${HOME:-/root}" PATH="$PATH:/usr/local/bin:/snap/bin" AWS_DEFAULT_REGION="$REGION"
  mkdir -p "$LIB_DIR" /var/lib/ml-training
  INSTANCE_ID=$(imds_get meta-data/instance-id) || fail "cannot read the instance ID from IMDSv2"
  log "bootstrapping $INSTANCE_ID for cluster $CLUSTER_NAME ($REGION, ASG $ASG_NAME, hook $LIFECYCLE_HOOK_NAME)"
  if command -v dnf >/dev/null 2>&1; then PKG=dnf; elif command -v apt-get >/dev/null 2>&1; then PKG=apt; fi
  if ! command -v aws >/dev/null 2>&1; then
    if [[ $PKG == dnf ]]; then pkg_install awscli-2; else snap install aws-cli --classic || pkg_install awscli; fi
  fi
  command -v aws >/dev/null 2>&1 || fail "the AWS CLI is not available"
  # The default of 10 parallel requests leaves most of a GPU instance's network bandwidth idle.
  aws configure set default.s3.max_concurrent_requests 64

  verify_gpu
  setup_storage
  write_env_file ""
  # Before the long steps, so a node terminated mid-bootstrap still releases its lifecycle hook.
  install_watcher
  setup_pytorch
  log "syncing $DATA_S3_URI to $DATA_DIR"
  retry 3 aws s3 sync "$DATA_S3_URI" "$DATA_DIR" --only-show-errors
  chown -R "$TRAINING_USER" "$DATA_DIR"
  log "dataset ready: $(du -sh "$DATA_DIR" | cut -f1)"
  restore_latest_checkpoint
  write_env_file "$RESUME_FROM"
  configure_gpu_metrics
  touch /var/lib/ml-training/bootstrap-complete
  log "bootstrap complete: job settings are in $ENV_FILE"
}

# Sourcing the script (as the tests do) only defines the functions.
if ! (return 0 2>/dev/null); then main "$@"; fi
