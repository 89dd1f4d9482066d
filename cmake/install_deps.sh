#!/usr/bin/env bash
# Installs snip's build dependencies from Debian 12 packages. Idempotent: packages
# already present are skipped without touching the network. Works as root or via sudo.
#   bash cmake/install_deps.sh            # everything the build, tests and benchmarks use
#   bash cmake/install_deps.sh --core     # only what the header library, CLI and core tests need
# LibTorch (CPU) with OpenBLAS backs the torch ops and the trainer; Debian's
# python3-torchvision provides torchvision's compiled ops, which the tests and
# benchmarks load to compare against.
set -euo pipefail
# ninja-build: the presets' generator; ccache: used by the build when present. cairo (with
# the DejaVu fonts) and CLI11: the programs' pictures and flags.
pkgs=(cmake g++ make ninja-build ccache libeigen3-dev xtensor-dev doctest-dev libbenchmark-dev
      nlohmann-json3-dev libstb-dev pkg-config libcairo2-dev libcli11-dev
      fonts-dejavu-core)
torch=(libtorch-dev libopenblas-dev python3-torchvision)
# the fuzzers (tests/fuzz): clang with its libFuzzer and sanitizer runtimes
fuzz=(clang libclang-rt-14-dev)
# the Python package (python/): pybind11, the interpreter's headers, NumPy, pytest, venv
python=(pybind11-dev python3-dev python3-numpy python3-pytest python3-venv)
# c10d's Gloo headers for the distributed trainer (LibTorch's library has the code)
dist=(libgloo-dev)
core=0
for a in "$@"; do
  case "$a" in
    --core) core=1 ;;
    *) echo "install_deps.sh: unknown option '$a' (known: --core)" >&2; exit 2 ;;
  esac
done
if [ "$core" -eq 0 ]; then pkgs+=("${torch[@]}" "${python[@]}" "${dist[@]}" "${fuzz[@]}"); fi
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
