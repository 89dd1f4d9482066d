#!/usr/bin/env bash
# Installs snip's build dependencies from Debian 12 packages. Idempotent: packages
# already present are skipped without touching the network. Works as root or via sudo.
#   bash cmake/install_deps.sh            # core: what the library, tests, CLI and benchmarks need
#   bash cmake/install_deps.sh --torch    # also LibTorch (CPU) and OpenBLAS for the trainer
set -euo pipefail
pkgs=(cmake g++ make libeigen3-dev xtensor-dev doctest-dev libbenchmark-dev
      nlohmann-json3-dev libstb-dev)
for a in "$@"; do
  case "$a" in
    --torch) pkgs+=(libtorch-dev libopenblas-dev libgloo-dev python3-torch python3-torchvision) ;;
    *) echo "install_deps.sh: unknown option '$a' (known: --torch)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps.sh: all ${#pkgs[@]} packages already installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install_deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
