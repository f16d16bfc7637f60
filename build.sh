#!/usr/bin/env bash
# build.sh — the front door for building, running and testing the chat system.
# Run ./build.sh help for the targets.
set -euo pipefail
cd "$(dirname "$0")"

VERSION=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
DIST=${CHAT_DIST:-dist} # where artifacts go

# The app's identity on Android (package name), Windows and Wayland. Set your
# own (a reverse domain you control) before publishing: Android identifies an
# app by it forever, so it cannot change after the first release.
APP_ID=${CHAT_APP_ID:-org.example.chat}
APP_NAME=Chat

# Android SDK packages the messages recommend; gogio uses the newest
# installed platform, build-tools and NDK, so newer ones work too.
ANDROID_PLATFORM=35
ANDROID_BUILD_TOOLS=35.0.0
ANDROID_NDK=27.2.12479018 # NDK r27c
ANDROID_MINSDK=21         # Android 5.0, the oldest API level NDK r27 targets
ANDROID_ARCHS=arm64,arm   # arm64-v8a and armeabi-v7a

# System packages the builds and tests need, as Debian/Ubuntu names.
APT_PACKAGES=(
  gcc pkg-config                                   # cgo for the desktop app
  libwayland-dev libx11-dev libx11-xcb-dev         # Gio on Linux: windowing
  libxkbcommon-x11-dev libxcursor-dev libxfixes-dev
  libegl-dev libgles-dev libvulkan-dev libffi-dev  # Gio: graphics
  libegl-mesa0 libgl1-mesa-dri                     # Mesa software rendering (headless tests)
  xvfb xdotool x11-apps imagemagick dbus-daemon    # real-window tests, screenshots, notifications
  brotli                                           # wasm: pre-compressed web client
  systemd strace                                   # deploy tests: systemd-analyze, syscalls the unit allows
  openssl                                          # TLS tests (KeyUpdates from s_client), bench.sh's certificate
  nginx libnginx-mod-stream caddy                  # reverse proxy tests: deploy/'s nginx and Caddy configs, run for real
  shellcheck                                       # lint this script and the workflow's shell steps
  chromium tesseract-ocr tesseract-ocr-eng         # web client tests: headless browser, reading its screen
  tesseract-ocr-heb tesseract-ocr-ara              # ... and reading Hebrew, Arabic, Chinese and Devanagari
  tesseract-ocr-chi-sim tesseract-ocr-hin          #     on it (the fonts test)
)
# The same for other distributions, printed when we cannot install.
DNF_PACKAGES="gcc pkgconf-pkg-config wayland-devel libX11-devel libxkbcommon-x11-devel libXcursor-devel libXfixes-devel mesa-libEGL-devel mesa-libGLES-devel vulkan-headers libffi-devel mesa-dri-drivers xorg-x11-server-Xvfb xdotool xorg-x11-apps ImageMagick dbus-daemon brotli systemd strace openssl nginx nginx-mod-stream caddy ShellCheck chromium tesseract tesseract-langpack-eng tesseract-langpack-heb tesseract-langpack-ara tesseract-langpack-chi_sim tesseract-langpack-hin nodejs npm"
PACMAN_PACKAGES="gcc pkgconf wayland libx11 libxkbcommon-x11 libxcursor libxfixes mesa vulkan-headers libffi xorg-server-xvfb xdotool xorg-xwd imagemagick dbus brotli systemd strace openssl nginx caddy shellcheck chromium tesseract tesseract-data-eng tesseract-data-heb tesseract-data-ara tesseract-data-chi_sim tesseract-data-hin nodejs npm"
# A JDK is needed only for Android builds; deps adds it when an Android SDK is set up.
APT_JDK=openjdk-17-jdk-headless DNF_JDK=java-17-openjdk-devel PACMAN_JDK=jdk17-openjdk

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf '==> WARNING: %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

need_go() {
  command -v go >/dev/null || die "Go is not installed: get Go 1.26 or newer from https://go.dev/dl/"
}

ldflags() { printf '%s' "-s -w -X main.version=$VERSION"; }

cmd_help() {
  cat <<USAGE
Usage: ./build.sh TARGET...     (version $VERSION; artifacts go to $DIST/)

  deps      install the system packages builds and tests need (apt-get as root or
            with sudo; elsewhere prints the package names and stops)
  run       build and start a local server (127.0.0.1:7878, web client on
            http://127.0.0.1:8080/, data in ./chat-data; CHAT_TCP, CHAT_HTTP and
            CHAT_DATA change them) and the desktop app connected to it; without a
            display, only the server. Fails if a port is already in use
  test      install deps, run vet and gofmt, build wasm, server, desktop and windows
            into $DIST/, then run the whole test suite with -race (it checks them)
  cluster   try cluster mode on this machine: a 3-server NATS JetStream cluster
            (nats-server from its Go module) and 3 chat servers sharing it, all on
            127.0.0.1 (apps: 7878, 7879, 7880; web: 8080, 8081, 8082; data in
            ./chat-cluster). Ctrl-C stops them all. Kill one (its pid is printed)
            and watch clients move to another
  bench     load benchmarks (cmd/chatbench/bench.sh): a fresh server on CPU 0, the
            generator on CPU 1, every scenario (~5 minutes on an idle machine);
            reports in $DIST/bench/, profiles with CHATBENCH_PROFILE=1, a choice with
            CHATBENCH_SCENARIOS="fanout-2000x50 join-2000"; not part of test
  desktop   the desktop app for this machine: $DIST/chat-VERSION-linux-ARCH
            (on a Mac: the macos target)
  windows   the app for Windows, amd64, with icon and manifest, built without cgo:
            $DIST/chat-VERSION-windows-amd64.exe
  macos     the app for macOS: needs a Mac with Xcode (go tool gogio -target macos);
            elsewhere it says so and stops
  fonts     the Noto fonts for Hebrew, Arabic, Devanagari, emoji, Hangul and CJK
            (npm packages, assets/fonts/package.json) into assets/fonts/base and cjk,
            with their manifest: served to the web client, embedded in the apps
  wasm      the web client for the server to embed: assets/web/main.wasm.gz (and .br),
            assets/web/wasm_exec.js (and the fonts); a copy in $DIST/chat-web-VERSION.tar
  server    the web client (wasm), then static servers with it embedded:
            $DIST/chat-server-VERSION-linux-amd64 and -linux-arm64, plus the
            systemd unit and environment file from deploy/
  android   signed APK (arm64, armv7): $DIST/chat-VERSION-android.apk; needs the
            Android SDK, NDK and a JDK (it checks and says what is missing).
            Signing: CHAT_ANDROID_KEYSTORE, CHAT_ANDROID_KEYSTORE_PASS and, for a
            keystore with several keys, CHAT_ANDROID_KEY_ALIAS (CHAT_ANDROID_KEY_PASS
            if the key's password differs); without them a debug key, for testing only
  android-check
            only check the Android prerequisites (SDK, NDK, JDK): what is missing, or
            what android would use
  all       wasm, server, desktop, windows and android; if one fails the others are
            still built, and it exits non-zero naming the failures
  version   print the version ($VERSION, from git describe)
  clean     remove $DIST/ and the generated web client files in assets/web
  help      this text

Every build writes $DIST/SHA256SUMS for the artifacts of this version.
CHAT_DIST sets another output directory.
App id: $APP_ID (set CHAT_APP_ID to change it).
USAGE
}

# ---------------------------------------------------------------- deps

# jdk_missing succeeds when javac, java or keytool cannot be found (the way
# gogio looks for them: JAVA_HOME/bin if set, else PATH).
jdk_missing() {
  local t
  for t in javac java keytool; do
    if [ -n "${JAVA_HOME:-}" ]; then [ -x "$JAVA_HOME/bin/$t" ] || return 0
    else command -v "$t" >/dev/null || return 0; fi
  done
  return 1
}

# jdk_tool NAME prints the path of a JDK program, as gogio finds it.
jdk_tool() { if [ -n "${JAVA_HOME:-}" ]; then printf '%s\n' "$JAVA_HOME/bin/$1"; else printf '%s\n' "$1"; fi; }

wanted_apt_packages() {
  printf '%s\n' "${APT_PACKAGES[@]}"
  if [ -n "${ANDROID_HOME:-}${ANDROID_SDK_ROOT:-}" ] && jdk_missing; then printf '%s\n' "$APT_JDK"; fi
}

missing_apt_packages() {
  local p
  while read -r p; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || printf '%s\n' "$p"
  done < <(wanted_apt_packages)
}

cmd_deps() {
  if ! command -v apt-get >/dev/null; then
    cat >&2 <<MSG
build.sh: this system has no apt-get. Install these packages, then run the target again:
  Fedora:  sudo dnf install $DNF_PACKAGES
  Arch:    sudo pacman -S --needed $PACMAN_PACKAGES
  Debian/Ubuntu: sudo apt-get install ${APT_PACKAGES[*]}
For Android builds also a JDK 17 ($DNF_JDK, $PACMAN_JDK, $APT_JDK) and the Android SDK
(./build.sh android says which SDK packages are missing).
MSG
    exit 1
  fi
  local missing=() p
  while read -r p; do [ -z "$p" ] || missing+=("$p"); done < <(missing_apt_packages)
  if [ ${#missing[@]} -eq 0 ]; then say "system packages: all present"; return; fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else
      die "missing packages: ${missing[*]}
Install them as root:  sudo apt-get install ${missing[*]}"
    fi
  fi
  say "installing: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ---------------------------------------------------------------- builds

# Each build target runs at most once per invocation (server needs wasm,
# all and test need everything).
BUILT=" "
once() {
  case "$BUILT" in *" $1 "*) return 1 ;; esac
  BUILT="$BUILT$1 "
}

# cmd_fonts installs the font packages (npm ci, skipped when the lock file
# has not changed since the last install) and picks their files into
# assets/fonts/base and assets/fonts/cjk (internal/fontpack), which the
# server and the apps embed.
cmd_fonts() {
  once fonts || return 0
  need_go
  local dir=assets/fonts
  if [ ! -f "$dir/package.json" ]; then
    warn "fonts: $dir/package.json is missing: building without the fonts for other scripts"
    return 0
  fi
  if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.chat-installed-lock.json" 2>/dev/null; then
    command -v npm >/dev/null || die "npm is not installed: the fonts come as npm packages; install Node.js 20+ and npm (https://nodejs.org)"
    say "fonts: npm ci (Noto fonts, about 140 MB of packages)"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    cp "$dir/package-lock.json" "$dir/node_modules/.chat-installed-lock.json"
  fi
  go run ./internal/fontpack -npm "$dir/node_modules" -out "$dir" -licenses "$dir/LICENSES"
}

cmd_wasm() {
  once wasm || return 0
  need_go
  cmd_fonts # served with the web client
  local web=assets/web tmp
  tmp=$(mktemp -d)
  say "wasm: building the web client ($VERSION)"
  GOOS=js GOARCH=wasm go build -trimpath -ldflags "$(ldflags)" -o "$tmp/main.wasm" ./app
  # Only the compressed forms go into assets/web: everything there is
  # embedded in the server. Temporary names start with a dot, which embed
  # skips, and are renamed into place so a build running meanwhile sees
  # either the old or the new file.
  rm -f "$web/main.wasm"
  if [ -f "$web/main.wasm.gz" ] && gzip -dc "$web/main.wasm.gz" 2>/dev/null | cmp -s - "$tmp/main.wasm"; then
    say "wasm: main.wasm.gz is up to date"
  else
    gzip -9 -n -c "$tmp/main.wasm" >"$web/.main.wasm.gz.tmp"
    mv "$web/.main.wasm.gz.tmp" "$web/main.wasm.gz"
  fi
  if command -v brotli >/dev/null; then
    if [ -f "$web/main.wasm.br" ] && brotli -dc "$web/main.wasm.br" 2>/dev/null | cmp -s - "$tmp/main.wasm"; then
      say "wasm: main.wasm.br is up to date"
    else
      say "wasm: brotli -q 11 (about half a minute)"
      brotli -q 11 -c "$tmp/main.wasm" >"$web/.main.wasm.br.tmp"
      mv "$web/.main.wasm.br.tmp" "$web/main.wasm.br"
    fi
  else
    rm -f "$web/main.wasm.br" # it would be stale
    warn "brotli is not installed: serving gzip only (./build.sh deps installs it)"
  fi
  cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" "$web/.wasm_exec.js.tmp"
  mv "$web/.wasm_exec.js.tmp" "$web/wasm_exec.js"
  rm -rf "$tmp"

  mkdir -p "$DIST"
  local files=(index.html wasm_exec.js main.wasm.gz)
  [ ! -f "$web/main.wasm.br" ] || files+=(main.wasm.br)
  # The tar is the directory chat-server -web serves: the client and fonts/.
  local stage f
  stage=$(mktemp -d)
  for f in "${files[@]}"; do cp "$web/$f" "$stage/"; done
  if [ -f assets/fonts/base/manifest.json ]; then
    mkdir -p "$stage/fonts/cjk"
    find assets/fonts/base -maxdepth 1 -type f ! -name README.md ! -name '.*' -exec cp {} "$stage/fonts/" \;
    find assets/fonts/cjk -maxdepth 1 -type f ! -name README.md ! -name '.*' -exec cp {} "$stage/fonts/cjk/" \;
    files+=(fonts)
  fi
  local same=() # GNU tar: the same bytes for the same files
  if tar --version 2>/dev/null | grep GNU >/dev/null; then
    same=(--sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner)
  fi
  tar ${same[@]+"${same[@]}"} -C "$stage" -cf "$DIST/chat-web-$VERSION.tar" "${files[@]}"
  rm -rf "$stage"
  say "wasm: $web/{${files[*]}} and $DIST/chat-web-$VERSION.tar ($(du -h "$web/main.wasm.gz" | cut -f1) gzip)"
}

cmd_server() {
  once server || return 0
  cmd_wasm # the server embeds the web client
  local arch out
  for arch in amd64 arm64; do
    out="$DIST/chat-server-$VERSION-linux-$arch"
    say "server: $out"
    CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "$(ldflags)" -o "$out" ./server
  done
  cp deploy/chat.service deploy/chat.env.example "$DIST/"
}

cmd_desktop() {
  once desktop || return 0
  need_go
  cmd_fonts # the fallback faces, embedded
  case "$(uname -s)" in
    Linux) ;;
    Darwin) cmd_macos; return ;;
    *) die "desktop: this script builds the desktop app on Linux and macOS; for Windows use the windows target (it cross-compiles from Linux)" ;;
  esac
  local pcs=(x11 x11-xcb xkbcommon xkbcommon-x11 xcursor xfixes egl wayland-egl wayland-client wayland-cursor vulkan)
  if ! command -v pkg-config >/dev/null || ! pkg-config --exists "${pcs[@]}"; then
    die "desktop: the Gio build dependencies are missing (pkg-config: ${pcs[*]}); run ./build.sh deps"
  fi
  local out
  out="$DIST/chat-$VERSION-linux-$(go env GOARCH)"
  say "desktop: $out"
  CGO_ENABLED=1 go build -trimpath -ldflags "$(ldflags) -X gioui.org/app.ID=$APP_ID" -o "$out" ./app
}

# semver is the version gogio wants, major.minor.patch.code: the numbers of
# a vX.Y.Z tag (0.0.0 before the first tag) and the commit count as the
# Android version code, which grows with every commit.
semver() {
  local code v=0.0.0
  code=$(git rev-list --count HEAD 2>/dev/null || echo 1)
  if [[ $VERSION =~ ^v?([0-9]+)\.([0-9]+)\.([0-9]+) ]]; then
    v="$((10#${BASH_REMATCH[1]})).$((10#${BASH_REMATCH[2]})).$((10#${BASH_REMATCH[3]}))"
  fi
  printf '%s.%s' "$v" "$code"
}

cmd_windows() {
  once windows || return 0
  need_go
  cmd_fonts
  local tmp out="$DIST/chat-$VERSION-windows-amd64.exe"
  tmp=$(mktemp -d)
  say "windows: $out"
  # gogio writes the icon, manifest and version resources to
  # app/Chat_windows_amd64.syso and leaves it there: remove it afterwards.
  local syso="app/${APP_NAME}_windows_amd64.syso"
  rm -f "$syso"
  local rc=0
  CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath" go tool gogio -target windows -arch amd64 \
    -appid "$APP_ID" -version "$(semver)" -icon assets/appicon.png \
    -ldflags "$(ldflags)" -o "$tmp/$APP_NAME.exe" ./app || rc=$?
  rm -f "$syso"
  [ $rc -eq 0 ] || { rm -rf "$tmp"; die "windows: gogio failed"; }
  mkdir -p "$DIST"
  mv "$tmp/$APP_NAME.exe" "$out"
  rm -rf "$tmp"
}

cmd_macos() {
  once macos || return 0
  need_go
  if [ "$(uname -s)" != Darwin ]; then
    die "macos: the macOS app needs cgo with Apple's SDK, so it is built on a Mac:
  install Xcode (or its command-line tools) and Go there, then run ./build.sh macos
  (it runs: go tool gogio -target macos -arch amd64,arm64 -appid $APP_ID -icon assets/appicon.png ./app)"
  fi
  cmd_fonts
  local out="$DIST/chat-$VERSION-macos.app"
  say "macos: $out"
  rm -rf "$out"
  mkdir -p "$DIST"
  GOFLAGS="${GOFLAGS:-} -trimpath" go tool gogio -target macos -arch amd64,arm64 -appid "$APP_ID" \
    -version "$(semver)" -icon assets/appicon.png -ldflags "$(ldflags)" -o "$out" ./app
  (cd "$DIST" && ditto -c -k --keepParent "chat-$VERSION-macos.app" "chat-$VERSION-macos.zip")
}

# ---------------------------------------------------------------- android

# newest_version_dir DIR prints the entry of DIR with the highest
# numeric version name (35.0.0, 27.2.12479018), as gogio picks it.
newest_version_dir() {
  local d names=()
  for d in "$1"/*; do
    [ -d "$d" ] && [[ ${d##*/} =~ ^[0-9]+(\.[0-9]+){0,2}$ ]] && names+=("${d##*/}")
  done
  [ ${#names[@]} -gt 0 ] || return 0
  printf '%s/%s\n' "$1" "$(printf '%s\n' "${names[@]}" | sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1)"
}

# newest_platform SDK prints platforms/android-N with the highest N.
newest_platform() {
  local d levels=()
  for d in "$1"/platforms/android-*; do
    [ -d "$d" ] && [[ ${d##*/android-} =~ ^[0-9]+$ ]] && levels+=("${d##*/android-}")
  done
  [ ${#levels[@]} -gt 0 ] || return 0
  printf '%s/platforms/android-%s\n' "$1" "$(printf '%s\n' "${levels[@]}" | sort -n | tail -n 1)"
}

# android_sdk prints the SDK directory: $ANDROID_HOME, else $ANDROID_SDK_ROOT.
android_sdk() { printf '%s\n' "${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}"; }

# android_ndk SDK prints the NDK gogio will use: the newest ndk/X.Y.Z, else
# ndk-bundle, else $ANDROID_NDK_ROOT.
android_ndk() {
  local ndk=""
  [ -z "$1" ] || ndk=$(newest_version_dir "$1/ndk")
  if [ -z "$ndk" ] && [ -n "$1" ] && [ -d "$1/ndk-bundle" ]; then ndk="$1/ndk-bundle"; fi
  if [ -z "$ndk" ] && [ -n "${ANDROID_NDK_ROOT:-}" ] && [ -d "$ANDROID_NDK_ROOT" ]; then ndk=$ANDROID_NDK_ROOT; fi
  [ -z "$ndk" ] || printf '%s\n' "$ndk"
}

# android_problems prints one entry per missing prerequisite of
# gogio -target android, each with how to get it. It checks everything,
# so the message names all that is missing at once.
android_problems() {
  local sdk var=ANDROID_HOME sdkm="sdkmanager" p
  sdk=$(android_sdk)
  [ -n "${ANDROID_HOME:-}" ] || var=ANDROID_SDK_ROOT
  local get_sdk="install the Android SDK command-line tools (https://developer.android.com/studio#command-line-tools-only, or Android Studio) and set ANDROID_HOME to the SDK directory"
  if [ -z "$sdk" ]; then
    echo "  - Android SDK: neither ANDROID_HOME nor ANDROID_SDK_ROOT is set: $get_sdk"
  elif [ ! -d "$sdk" ]; then
    echo "  - Android SDK: $var=$sdk does not exist: $get_sdk"
    sdk=""
  elif [ -x "$sdk/cmdline-tools/latest/bin/sdkmanager" ]; then
    sdkm="$sdk/cmdline-tools/latest/bin/sdkmanager"
  fi

  # The platform jar: gogio compiles against the newest platforms/android-N.
  p=""
  [ -z "$sdk" ] || p=$(newest_platform "$sdk")
  if [ -z "$p" ]; then
    echo "  - Android SDK platform (platforms/android-N/android.jar): $sdkm \"platforms;android-$ANDROID_PLATFORM\""
  elif [ ! -f "$p/android.jar" ]; then
    echo "  - Android SDK platform jar: $p/android.jar is missing (broken install?): $sdkm \"platforms;android-${p##*-}\""
  fi

  # Build tools: gogio uses the newest build-tools/X.Y.Z and needs all four there.
  local bt="" tools=() t
  [ -z "$sdk" ] || bt=$(newest_version_dir "$sdk/build-tools")
  for t in d8 aapt2 zipalign apksigner; do [ -n "$bt" ] && [ -x "$bt/$t" ] || tools+=("$t"); done
  if [ ${#tools[@]} -gt 0 ]; then
    echo "  - Android SDK build-tools with ${tools[*]}${bt:+ (not in $bt)}: $sdkm \"build-tools;$ANDROID_BUILD_TOOLS\" (Debian's aapt2, zipalign and apksigner packages are not enough: there is no d8, and gogio runs all four from one build-tools directory)"
  fi

  # The NDK, with clang for both architectures.
  local ndk host clangs=() a
  ndk=$(android_ndk "$sdk")
  host="$(uname -s | tr '[:upper:]' '[:lower:]')-x86_64"
  if [ -z "$ndk" ]; then
    echo "  - Android NDK (for the cgo part of Gio): $sdkm \"ndk;$ANDROID_NDK\" (or set ANDROID_NDK_ROOT to an installed NDK)"
  else
    for a in aarch64-linux-android armv7a-linux-androideabi; do
      compgen -G "$ndk/toolchains/llvm/prebuilt/$host/bin/${a}[0-9]*-clang" >/dev/null || clangs+=("$a")
    done
    if [ ${#clangs[@]} -gt 0 ]; then
      echo "  - Android NDK compilers for ${clangs[*]} (not in $ndk/toolchains/llvm/prebuilt/$host/bin): $sdkm \"ndk;$ANDROID_NDK\""
    fi
  fi
  case "$(uname -m)" in
    x86_64 | amd64) ;;
    *) [ "$(uname -s)" = Darwin ] || echo "  - an x86_64 build machine: the NDK's compilers for Linux are x86_64 only (this one is $(uname -m))" ;;
  esac

  # A JDK: javac for Gio's Java part; java runs d8 and apksigner; keytool makes keys.
  if jdk_missing; then
    echo "  - a JDK 17 (javac, java, keytool${JAVA_HOME:+ in JAVA_HOME=$JAVA_HOME/bin}): sudo apt-get install $APT_JDK (Fedora: $DNF_JDK, Arch: $PACMAN_JDK)"
  fi
}

# android_keystore sets KEYSTORE and KEYSTORE_PASS: the release keystore from
# the environment, or the debug keystore, generated if needed.
android_keystore() {
  if [ -n "${CHAT_ANDROID_KEYSTORE:-}" ]; then
    [ -f "$CHAT_ANDROID_KEYSTORE" ] || die "android: CHAT_ANDROID_KEYSTORE=$CHAT_ANDROID_KEYSTORE does not exist"
    [ -n "${CHAT_ANDROID_KEYSTORE_PASS:-}" ] || die "android: CHAT_ANDROID_KEYSTORE is set but CHAT_ANDROID_KEYSTORE_PASS (its password) is not"
    KEYSTORE=$CHAT_ANDROID_KEYSTORE KEYSTORE_PASS=$CHAT_ANDROID_KEYSTORE_PASS
    say "android: signing with $KEYSTORE${CHAT_ANDROID_KEY_ALIAS:+ (key $CHAT_ANDROID_KEY_ALIAS)}"
    return
  fi
  KEYSTORE=${CHAT_ANDROID_DEBUG_KEYSTORE:-$HOME/.android/debug.keystore} KEYSTORE_PASS=android
  if [ ! -f "$KEYSTORE" ]; then
    say "android: generating the debug keystore $KEYSTORE"
    mkdir -p "$(dirname "$KEYSTORE")"
    "$(jdk_tool keytool)" -genkeypair -noprompt -keystore "$KEYSTORE" -storepass android -keypass android \
      -alias androiddebugkey -keyalg RSA -keysize 2048 -validity 10000 \
      -dname "CN=Android Debug,O=Android,C=US" >/dev/null
  fi
  android_debug_warning
}

android_debug_warning() {
  warn "the DEBUG key $KEYSTORE (password \"android\") signs this APK: it is for testing only."
  warn "Anyone can make such a key, app stores reject it, and phones will not update it with an"
  warn "APK signed by your real key (uninstall first). For a release set CHAT_ANDROID_KEYSTORE and"
  warn "CHAT_ANDROID_KEYSTORE_PASS (and CHAT_ANDROID_KEY_ALIAS if the keystore holds several keys)."
}

# android_check stops with the list of missing prerequisites, if any.
android_check() {
  local problems
  problems=$(android_problems)
  [ -z "$problems" ] || die "android: cannot build the APK; missing:
$problems
With the SDK command-line tools installed, all SDK parts at once:
  sdkmanager --sdk_root=\"\${ANDROID_HOME:-\$HOME/Android/Sdk}\" \"platforms;android-$ANDROID_PLATFORM\" \"build-tools;$ANDROID_BUILD_TOOLS\" \"ndk;$ANDROID_NDK\"
then export ANDROID_HOME to that directory and run ./build.sh android again."
}

cmd_android_check() {
  android_check
  local sdk
  sdk=$(android_sdk)
  say "android: everything found: SDK $sdk, platform $(newest_platform "$sdk"), build-tools $(newest_version_dir "$sdk/build-tools"), NDK $(android_ndk "$sdk"), JDK $(command -v "$(jdk_tool javac)")"
}

cmd_android() {
  once android || return 0
  need_go
  android_check
  cmd_fonts
  export ANDROID_HOME
  ANDROID_HOME=$(android_sdk) # gogio reads only ANDROID_HOME
  local KEYSTORE KEYSTORE_PASS tmp out="$DIST/chat-$VERSION-android.apk" bt
  android_keystore
  bt=$(newest_version_dir "$ANDROID_HOME/build-tools")
  tmp=$(mktemp -d)
  say "android: $out (version $(semver), app id $APP_ID, $ANDROID_ARCHS)"
  # gogio's apksigner call names no key alias; a keystore with several keys
  # is applied afterwards with the alias (apksigner replaces the signature).
  local gogio_ks=$KEYSTORE gogio_pass=$KEYSTORE_PASS
  if [ -n "${CHAT_ANDROID_KEY_ALIAS:-}" ]; then
    gogio_ks=$tmp/interim.keystore gogio_pass=interim
    "$(jdk_tool keytool)" -genkeypair -noprompt -keystore "$gogio_ks" -storepass interim -keypass interim -alias interim \
      -keyalg RSA -keysize 2048 -validity 1 -dname CN=interim >/dev/null
  fi
  GOGIO_SIGNPASS=$gogio_pass GOFLAGS="${GOFLAGS:-} -trimpath" go tool gogio -target android \
    -arch "$ANDROID_ARCHS" -minsdk "$ANDROID_MINSDK" -appid "$APP_ID" -name "$APP_NAME" \
    -version "$(semver)" -icon assets/appicon.png -ldflags "-X main.version=$VERSION" \
    -signkey "$gogio_ks" -o "$tmp/chat.apk" ./app
  if [ -n "${CHAT_ANDROID_KEY_ALIAS:-}" ]; then
    KS_PASS=$KEYSTORE_PASS KEY_PASS=${CHAT_ANDROID_KEY_PASS:-$KEYSTORE_PASS} "$bt/apksigner" sign \
      --ks "$KEYSTORE" --ks-key-alias "$CHAT_ANDROID_KEY_ALIAS" --ks-pass env:KS_PASS --key-pass env:KEY_PASS "$tmp/chat.apk"
  fi
  "$bt/apksigner" verify --print-certs "$tmp/chat.apk" | sed 's/^/    /' >&2
  mkdir -p "$DIST"
  mv "$tmp/chat.apk" "$out"
  rm -rf "$tmp"
  [ -n "${CHAT_ANDROID_KEYSTORE:-}" ] || android_debug_warning
}

# ---------------------------------------------------------------- all, sums

cmd_all() {
  local t failed=()
  for t in wasm server desktop windows android; do
    # Each in a subshell, so one failure (android without an SDK) does not
    # stop the others; the successes are recorded for SHA256SUMS.
    if (cmd_"$t"); then BUILT="$BUILT$t "; else failed+=("$t"); fi
  done
  write_sums
  [ ${#failed[@]} -eq 0 ] || die "all: failed: ${failed[*]} (see above); the other artifacts are in $DIST/"
}

# artifact_names prints the names of every artifact of this version that
# the targets can make (exact names: an older VERSION-dirty build in dist
# must not count).
artifact_names() {
  local v=$VERSION
  printf '%s\n' "chat-web-$v.tar" "chat-server-$v-linux-amd64" "chat-server-$v-linux-arm64" \
    "chat-$v-linux-amd64" "chat-$v-linux-arm64" "chat-$v-windows-amd64.exe" "chat-$v-macos.zip" \
    "chat-$v-android.apk" chat.service chat.env.example
}

# write_sums writes SHA256SUMS for this version's artifacts in dist.
write_sums() {
  [ -d "$DIST" ] || return 0
  local files=() f
  while read -r f; do [ ! -f "$DIST/$f" ] || files+=("$f"); done < <(artifact_names)
  [ ${#files[@]} -gt 0 ] || return 0
  local sum="sha256sum"
  command -v sha256sum >/dev/null || sum="shasum -a 256"
  (cd "$DIST" && $sum -- "${files[@]}") >"$DIST/SHA256SUMS.tmp"
  mv "$DIST/SHA256SUMS.tmp" "$DIST/SHA256SUMS"
  say "$DIST/SHA256SUMS: ${#files[@]} files"
}

# ---------------------------------------------------------------- test, run

cmd_test() {
  need_go
  cmd_deps
  cmd_fonts # embedded by the server and the apps: before vet, which compiles them
  say "go vet"
  go vet ./...
  say "gofmt"
  local unformatted files=() f
  while IFS= read -r -d '' f; do [ -f "$f" ] && files+=("$f"); done < <(
    git ls-files -z --cached --others --exclude-standard -- '*.go' 2>/dev/null ||
      find . -name '*.go' -not -path './dist/*' -print0)
  unformatted=$(gofmt -l "${files[@]}")
  [ -z "$unformatted" ] || die "not gofmt-formatted: $unformatted"
  # The artifacts, built once; internal/buildtest checks them (and fails
  # instead of skipping when CHAT_REQUIRE_ARTIFACTS is set).
  cmd_wasm
  cmd_server
  cmd_desktop
  cmd_windows
  write_sums
  say "staticcheck"
  go tool staticcheck ./...
  # The browser tests drive Debian's Chromium with Playwright's library
  # (never its browser download), pinned by e2e/browser/package-lock.json.
  command -v npm >/dev/null || die "npm is not installed: the browser tests need Node.js 20+ and npm (https://nodejs.org)"
  say "npm ci (playwright-core for the browser tests)"
  npm ci --prefix e2e/browser --no-audit --no-fund --loglevel=error
  # CHAT_DIST_VERSION names the artifacts just built: dist/ may also hold older ones.
  CHAT_DIST=$(cd "$DIST" && pwd) CHAT_DIST_VERSION=$VERSION CHAT_REQUIRE_ARTIFACTS=1 CHAT_REQUIRE_BROWSER=1 CHAT_REQUIRE_TOOLS=1
  export CHAT_DIST CHAT_DIST_VERSION CHAT_REQUIRE_ARTIFACTS CHAT_REQUIRE_BROWSER CHAT_REQUIRE_TOOLS
  say "go test -race"
  go test -race -timeout 20m ./...
}

cmd_bench() {
  need_go
  say "load benchmarks (BENCHMARKS.md, section Server load); results in $DIST/bench/"
  cmd/chatbench/bench.sh
}

# port_open HOST:PORT: whether something accepts connections there.
port_open() {
  local host=${1%:*} port=${1##*:}
  [ -n "$host" ] || host=127.0.0.1
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# The local server of `run`, killed when the script exits. Global, not
# local: the EXIT trap runs after cmd_run has returned.
RUN_SERVER_PID=""
stop_run_server() {
  [ -n "$RUN_SERVER_PID" ] || return 0
  kill "$RUN_SERVER_PID" 2>/dev/null || true
  wait "$RUN_SERVER_PID" 2>/dev/null || true
}

cmd_run() {
  need_go
  # Both listeners on loopback: this is a development server, not one for
  # the network (its web client would be reachable from the LAN).
  local addr="${CHAT_TCP:-127.0.0.1:7878}" http="${CHAT_HTTP:-127.0.0.1:8080}" a
  # An old server still on the port would take the app's connection while
  # ours failed to start: refuse before building anything.
  for a in "$addr" "$http"; do
    port_open "$a" && die "run: $a is already in use (an earlier ./build.sh run still running? stop it, or set CHAT_TCP / CHAT_HTTP)"
  done
  cmd_wasm # so the local server has the web client
  mkdir -p "$DIST"
  say "building the server"
  go build -ldflags "$(ldflags)" -o "$DIST/chat-server" ./server
  local server_args=(-tcp "$addr" -http "$http" -data "${CHAT_DATA:-chat-data}")
  if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    say "no display: starting only the server on $addr (Ctrl-C stops it)"
    say "web client: http://$http/"
    say "connect with: go run ./cmd/chat -server $addr -name NAME"
    exec "$DIST/chat-server" "${server_args[@]}"
  fi
  say "building the desktop app"
  go build -ldflags "$(ldflags)" -o "$DIST/chat-app" ./app
  trap stop_run_server EXIT
  "$DIST/chat-server" "${server_args[@]}" &
  RUN_SERVER_PID=$!
  # Wait until it listens; if it exits instead (a port taken meanwhile, bad
  # data), stop here rather than start the app against nothing.
  local tries=0
  until port_open "$addr" && port_open "$http"; do
    kill -0 "$RUN_SERVER_PID" 2>/dev/null || { wait "$RUN_SERVER_PID" || true; RUN_SERVER_PID=""; die "run: the server did not start (see above)"; }
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || die "run: the server is not listening on $addr and $http after 30 s"
    sleep 0.1
  done
  say "server on $addr (pid $RUN_SERVER_PID), web client: http://$http/"
  say "starting the app — close its window to stop both"
  "$DIST/chat-app" -server "$addr"
}

# ---------------------------------------------------------------- cluster

CLUSTER_PIDS=()
stop_cluster() {
  local p
  for p in "${CLUSTER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${CLUSTER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  CLUSTER_PIDS=()
}

# wait_port HOST:PORT PID WHAT: until something listens there, or PID died.
wait_port() {
  local tries=0
  until port_open "$1"; do
    kill -0 "$2" 2>/dev/null || die "cluster: $3 exited instead of listening on $1 (its log: $4)"
    tries=$((tries + 1))
    [ "$tries" -lt 600 ] || die "cluster: $3 is not listening on $1 after 60 s (its log: $4)"
    sleep 0.1
  done
}

cmd_cluster() {
  need_go
  local dir="${CHAT_CLUSTER_DIR:-chat-cluster}" i p
  # CHAT_CLUSTER_PORT_OFFSET moves every port (tests use it to stay clear
  # of a cluster someone runs by hand).
  local o=${CHAT_CLUSTER_PORT_OFFSET:-0}
  local nats_ports=($((4222 + o)) $((4223 + o)) $((4224 + o))) route_ports=($((6222 + o)) $((6223 + o)) $((6224 + o)))
  local tcp_ports=($((7878 + o)) $((7879 + o)) $((7880 + o))) http_ports=($((8080 + o)) $((8081 + o)) $((8082 + o)))
  for p in "${nats_ports[@]}" "${route_ports[@]}" "${tcp_ports[@]}" "${http_ports[@]}"; do
    port_open "127.0.0.1:$p" && die "cluster: 127.0.0.1:$p is already in use (a ./build.sh run or cluster still running?)"
  done
  cmd_wasm # the web client each node serves
  mkdir -p "$DIST" "$dir"
  say "building nats-server (github.com/nats-io/nats-server/v2, a tool in go.mod) and the chat server"
  go build -o "$DIST/nats-server" github.com/nats-io/nats-server/v2
  go build -ldflags "$(ldflags)" -o "$DIST/chat-server" ./server
  trap stop_cluster EXIT
  trap 'stop_cluster; exit 130' INT TERM
  local routes="" urls=""
  for i in 0 1 2; do
    routes+="nats-route://127.0.0.1:${route_ports[$i]},"
    urls+="nats://127.0.0.1:${nats_ports[$i]},"
  done
  routes=${routes%,} urls=${urls%,}
  for i in 0 1 2; do
    mkdir -p "$dir/nats-$i"
    cat >"$dir/nats-$i.conf" <<CONF
# NATS server $i of the local test cluster (./build.sh cluster).
server_name: nats-$i
listen: 127.0.0.1:${nats_ports[$i]}
jetstream { store_dir: "$dir/nats-$i" }
cluster {
  name: chat-local
  listen: 127.0.0.1:${route_ports[$i]}
  routes: [ ${routes//,/, } ]
}
CONF
    "$DIST/nats-server" -c "$dir/nats-$i.conf" >"$dir/nats-$i.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    say "nats-$i: nats://127.0.0.1:${nats_ports[$i]} (pid $!, log $dir/nats-$i.log)"
  done
  for i in 0 1 2; do wait_port "127.0.0.1:${nats_ports[$i]}" "${CLUSTER_PIDS[$i]}" "nats-$i" "$dir/nats-$i.log"; done
  for i in 0 1 2; do
    "$DIST/chat-server" -node "chat-$i" -nats "$urls" -tcp "127.0.0.1:${tcp_ports[$i]}" -http "127.0.0.1:${http_ports[$i]}" \
      -data "$dir/chat-$i" >"$dir/chat-$i.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    say "chat-$i: apps 127.0.0.1:${tcp_ports[$i]}, web http://127.0.0.1:${http_ports[$i]}/ (pid $!, log $dir/chat-$i.log)"
  done
  for i in 0 1 2; do
    wait_port "127.0.0.1:${tcp_ports[$i]}" "${CLUSTER_PIDS[$((i + 3))]}" "chat-$i" "$dir/chat-$i.log"
  done
  say "cluster up. Connect: go run ./cmd/chat -server 127.0.0.1:${tcp_ports[0]},127.0.0.1:${tcp_ports[1]},127.0.0.1:${tcp_ports[2]} -name NAME"
  say "health: curl http://127.0.0.1:${http_ports[0]}/healthz — Ctrl-C stops everything"
  wait -n "${CLUSTER_PIDS[@]}" || true
  say "a server exited; the others keep running until Ctrl-C"
  wait
}

cmd_clean() {
  rm -rf "$DIST"
  rm -f assets/web/main.wasm assets/web/main.wasm.gz assets/web/main.wasm.br assets/web/wasm_exec.js assets/web/.*.tmp
  rm -f app/*.syso
  rm -rf assets/fonts/node_modules
  find assets/fonts/base assets/fonts/cjk -type f ! -name README.md -delete 2>/dev/null || true
}

[ $# -gt 0 ] || { cmd_help; exit 2; }
sums=""
for target in "$@"; do
  case "$target" in
    help|-h|--help) cmd_help ;;
    deps) cmd_deps ;;
    fonts) cmd_fonts ;;
    test) cmd_test ;;
    bench) cmd_bench ;;
    run) cmd_run ;;
    cluster) cmd_cluster ;;
    wasm|server|desktop|windows|macos|android) cmd_"$target"; sums=1 ;;
    android-check) cmd_android_check ;;
    all) cmd_all ;;
    version) echo "$VERSION" ;;
    clean) cmd_clean ;;
    *) cmd_help >&2; die "unknown target: $target" ;;
  esac
done
[ -z "$sums" ] || write_sums
