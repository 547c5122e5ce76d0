#!/usr/bin/env bash
# Starts a single-node Slurm on this machine (for the sweep tests of the `slurm` executor).
# Run as root. Idempotent: installs Debian's slurm-wlm and munge only when missing, rewrites
# /etc/slurm/slurm.conf (one node = this machine's CPUs and memory, one partition "debug",
# auth/munge, SlurmUser=root, no accounting, no cgroups), creates the munge key once, starts
# munged (as user munge), slurmctld and slurmd without systemd when they are not running, and
# waits until `sinfo` shows the node idle. Exits non-zero with a message when that fails.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if ! command -v sbatch >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends slurm-wlm munge
fi

host=$(hostname -s)
cpus=$(nproc)
# RealMemory in MiB, a little under the total so that slurmd accepts the node.
mem=$(free -m | awk '/^Mem:/ { print int($2 * 0.9) }')
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
conf=/etc/slurm/slurm.conf
want=$(
  cat <<EOF
# Written by .ci/slurm_local.sh: a single-node Slurm for tests.
ClusterName=local
SlurmctldHost=$host
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)
restart=0
if [[ ! -f $conf ]] || [[ "$(cat "$conf")" != "$want" ]]; then
  printf '%s\n' "$want" >"$conf"
  restart=1
fi

if [[ ! -s /etc/munge/munge.key ]]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
chmod 700 /etc/munge

running() { pgrep -x "$1" >/dev/null; }
if ! running munged; then
  runuser -u munge -- /usr/sbin/munged
fi
if ((restart)); then
  # A changed configuration needs fresh daemons (only ours: these are single-node test daemons).
  for d in slurmctld slurmd; do
    if [[ -f /run/$d.pid ]]; then kill "$(cat /run/$d.pid)" 2>/dev/null || true; fi
  done
  sleep 1
fi
running slurmctld || /usr/sbin/slurmctld
running slurmd || /usr/sbin/slurmd

for _ in $(seq 1 60); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)
  if [[ $state == idle || $state == mixed || $state == allocated ]]; then
    echo "slurm_local: node $host ($cpus CPUs, $mem MiB) is $state"
    exit 0
  fi
  # A node that came back from a restart may be down; bring it back once.
  if [[ $state == down* || $state == drain* ]]; then
    scontrol update NodeName="$host" State=RESUME 2>/dev/null || true
  fi
  sleep 1
done
echo "slurm_local: node did not become idle; sinfo says: $(sinfo -N 2>&1 | tail -n +2)" >&2
exit 1
