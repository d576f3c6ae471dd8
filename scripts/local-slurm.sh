#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the Slurm executor's
# tests: installs Debian's slurm-wlm and munge if missing, writes a minimal
# slurm.conf (proctrack/linuxproc, no accounting, this machine's CPUs and
# memory), starts munged, slurmctld and slurmd without systemd, and waits
# until the node is idle. Idempotent: a running cluster is left as it is.
#
#   scripts/local-slurm.sh start | stop | status
set -euo pipefail

conf=/etc/slurm/slurm.conf
node=$(hostname -s)

install() {
  if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
}

configure() {
  mkdir -p /etc/slurm /var/spool/slurmd /var/spool/slurmctld /var/log/slurm /run/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
  chmod 0700 /etc/munge /var/lib/munge /var/log/munge
  chmod 0755 /run/munge
  chmod 0400 /etc/munge/munge.key
  local memory
  memory=$(awk '/MemTotal/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)
  cat > "$conf.tmp" <<EOF
# Written by initscope's scripts/local-slurm.sh: one node, no accounting.
ClusterName=initscope-local
SlurmctldHost=$node
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MaxArraySize=1001
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmdTimeout=300
InactiveLimit=0
KillWait=30
MinJobAge=300
NodeName=$node CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$conf.tmp" "$conf"
}

running() { pgrep -x "$1" >/dev/null 2>&1; }

start() {
  install
  running slurmctld && running slurmd && running munged && wait_idle && return 0
  configure
  running munged || runuser -u munge -- /usr/sbin/munged
  running slurmctld || /usr/sbin/slurmctld
  running slurmd || /usr/sbin/slurmd
  wait_idle
}

wait_idle() {
  for _ in $(seq 1 120); do
    state=$(sinfo -h -n "$node" -o %T 2>/dev/null | head -1 || true)
    case $state in
      idle|mixed|allocated) echo "local Slurm: node $node is $state"; return 0 ;;
      down*|drain*) scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
  done
  echo "local Slurm: the node did not become idle; see /var/log/slurm/" >&2
  return 1
}

stop() {
  pkill -x slurmd || true
  pkill -x slurmctld || true
  pkill -x munged || true
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
