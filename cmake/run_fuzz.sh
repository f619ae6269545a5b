#!/bin/sh
# run_fuzz.sh CLANG SRC OUTDIR SOURCE_DIR - build one libFuzzer target with
# ASan+UBSan against src/core and run it for a bounded time.
set -eu
clang=$1 src=$2 out=$3 top=$4
name=$(basename "$src" .c)
mkdir -p "$out/$name-corpus"
cflags=$(pkg-config --cflags libcjson)
libs=$(pkg-config --libs libcjson)
# extra sources a target needs beyond src/core: a "FUZZ_SOURCES:" line;
# extra pkg-config modules: a "FUZZ_PKGS:" line
extra=$(sed -n 's/^ \* FUZZ_SOURCES: //p' "$src" | sed "s|[^ ]*|$top/&|g")
pkgs=$(sed -n 's/^ \* FUZZ_PKGS: //p' "$src")
if [ -n "$pkgs" ]; then
    cflags="$cflags $(pkg-config --cflags $pkgs)"
    libs="$libs $(pkg-config --libs $pkgs)"
fi
"$clang" -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=all -I"$top/src" $cflags "$src" "$top"/src/core/*.c $extra $libs -lm \
    -o "$out/$name"
seeds="$top/tests/fuzz/corpus/$name"
[ -d "$seeds" ] || seeds=
exec "$out/$name" -max_total_time="${TE_FUZZ_SECONDS:-20}" -max_len=65536 -rss_limit_mb=1024 \
    "$out/$name-corpus" $seeds
