#!/usr/bin/env bash
# Install the Debian packages the project reads offline (the two datasets, and eSpeak NG, which
# synthesises the spoken digits), plus headless Chromium for the test that opens the arena's
# report.html, where this machine allows it.
# Never fails the build: without root or apt-get it prints what to do instead.
set -u
have_fmnist=0; have_fortunes=0; have_chromium=0; have_espeak=0
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && have_fmnist=1
[ -d /usr/share/games/fortunes ] && have_fortunes=1
command -v chromium-headless-shell >/dev/null 2>&1 || command -v chromium >/dev/null 2>&1 && have_chromium=1
command -v espeak-ng >/dev/null 2>&1 && have_espeak=1
if [ $have_fmnist = 1 ] && [ $have_fortunes = 1 ] && [ $have_chromium = 1 ] && [ $have_espeak = 1 ]; then
  echo "data: Debian packages dataset-fashion-mnist, fortunes and espeak-ng are installed (and headless Chromium)"
  exit 0
fi
packages="dataset-fashion-mnist fortunes"
[ $have_chromium = 0 ] && packages="$packages chromium-headless-shell"
[ $have_espeak = 0 ] && packages="$packages espeak-ng"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "data: installing Debian packages $packages"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get install -y -q $packages >/tmp/twopaths-apt.log 2>&1 \
     || { apt-get update -q >>/tmp/twopaths-apt.log 2>&1 && \
          apt-get install -y -q $packages >>/tmp/twopaths-apt.log 2>&1; }; then
    echo "data: installed"
    exit 0
  fi
  echo "note: apt-get could not install $packages (log: /tmp/twopaths-apt.log)."
else
  echo "note: not root or no apt-get, so the Debian packages ($packages) were not installed."
fi
cat <<'MSG'
note: without them twopaths still works:
  - Fashion-MNIST: 'twopaths data fetch fashion-mnist' downloads it (checksums verified),
    or point TWOPATHS_DATA / --set data.path at a folder with the four IDX .gz files;
  - text: any UTF-8 file or folder with --data text --set data.path=...;
  - shapes and mixture2d are procedural and always available;
  - spoken-digits needs espeak-ng; any folder of WAV files works with --data audio --set data.path=...;
  - without Chromium the test that renders report.html in a browser is skipped.
MSG
exit 0
