#!/usr/bin/env bash
# Install the two Debian data packages the project reads offline, where this machine allows it.
# Never fails the build: without root or apt-get it prints what to do instead.
set -u
have_fmnist=0; have_fortunes=0
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && have_fmnist=1
[ -d /usr/share/games/fortunes ] && have_fortunes=1
if [ $have_fmnist = 1 ] && [ $have_fortunes = 1 ]; then
  echo "data: Debian packages dataset-fashion-mnist and fortunes are installed"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "data: installing Debian packages dataset-fashion-mnist fortunes"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get install -y -q dataset-fashion-mnist fortunes >/tmp/twopaths-apt.log 2>&1 \
     || { apt-get update -q >>/tmp/twopaths-apt.log 2>&1 && \
          apt-get install -y -q dataset-fashion-mnist fortunes >>/tmp/twopaths-apt.log 2>&1; }; then
    echo "data: installed"
    exit 0
  fi
  echo "note: apt-get could not install the data packages (log: /tmp/twopaths-apt.log)."
else
  echo "note: not root or no apt-get, so the Debian data packages were not installed."
fi
cat <<'MSG'
note: without them twopaths still works:
  - Fashion-MNIST: 'twopaths data fetch fashion-mnist' downloads it (checksums verified),
    or point TWOPATHS_DATA / --set data.path at a folder with the four IDX .gz files;
  - text: any UTF-8 file or folder with --data text --set data.path=...;
  - shapes and mixture2d are procedural and always available.
MSG
exit 0
