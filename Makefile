# supervisor: a static musl PID 1 for AI-agent sandboxes.
#
#   make          build/supervisor (static, musl), dependencies built once into build/deps
#   make run      install build packages, build, run a demo sandbox
#   make check    install test packages, then every test (unit, integration, runc, fuzz, lint)
#   make bench    startup, proxy, gateway relay and SSH benchmarks, each against a peer (ratios)
#
# The product is built with musl-gcc against static dependencies from Debian sources; tests
# build the same sources for glibc with ASan and UBSan.

.DEFAULT_GOAL := all
BUILD       := build
VERSION     := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)

include static/deps.mk

MUSL_CC     ?= musl-gcc
CC_TEST     ?= gcc
CLANG       ?= clang
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)

WARNINGS    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wundef -Wstrict-prototypes \
               -Wmissing-prototypes -Wno-missing-field-initializers
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARNINGS) -DSV_VERSION='"$(VERSION)"' -I.
HARDEN      := -fstack-protector-strong -fPIE -fno-strict-aliasing
PROD_CFLAGS := $(BASE_CFLAGS) $(HARDEN) -Os -ffunction-sections -fdata-sections $(DEPS_CFLAGS) \
               -I$(BUILD)/gen
PROD_LDFLAGS := $(MUSL_LDFLAGS_STATIC_PIE) -Wl,-z,relro,-z,now -Wl,--gc-sections -s

# The card's four folders; each may hold sub-folders by concern (netns/proxy/, session/ssh/, ...).
MODULES     := supervisor landlock netns session
SRCS        := $(sort $(shell find $(MODULES) -name '*.c'))
LIB_SRCS    := $(filter-out supervisor/main.c,$(SRCS))
HDRS        := $(sort $(shell find $(MODULES) -name '*.h'))

PROD_OBJS   := $(SRCS:%.c=$(BUILD)/obj/%.o)

# --- generated protobuf code ---------------------------------------------------------------------
# Every session/proto/*.proto becomes $(GEN_DIR)/<name>.pb-c.{c,h} (Debian's protoc-c, the
# protobuf-c-compiler package; imports resolve against session/proto). The generated C is built
# into the product, the unit tests and the fuzzers with the same warnings as ours (protoc-c's
# output is clean under them), but symcheck does not judge its names (openshell__v1__...). With
# no .proto files all of this is empty.
PROTO_DIR   := session/proto
PROTOC_C    ?= protoc-c
GEN_DIR     := $(BUILD)/gen
PROTOS      := $(wildcard $(PROTO_DIR)/*.proto)
GEN_SRCS    := $(PROTOS:$(PROTO_DIR)/%.proto=$(GEN_DIR)/%.pb-c.c)
GEN_HDRS    := $(GEN_SRCS:.c=.h)
# The public roots the layer-7 proxy trusts upstream besides the system bundle (l7 contract
# §1.5), as DER arrays generated from Debian's ca-certificates (a build package).
ROOTS_DIR   := /usr/share/ca-certificates/mozilla
ROOTS_SRC   := $(GEN_DIR)/px_roots_data.c
GEN_SRCS    += $(ROOTS_SRC)
GEN_OBJS    := $(GEN_SRCS:$(GEN_DIR)/%.c=$(BUILD)/obj/gen/%.o)

$(ROOTS_SRC): static/gen-px-roots.sh $(wildcard $(ROOTS_DIR)/*.crt)
	@mkdir -p $(GEN_DIR)
	sh static/gen-px-roots.sh $@ $(ROOTS_DIR)

# One protoc-c run writes both files (a pattern rule with two targets makes both at once).
# Any .proto change regenerates all of them: a message type may come from an imported file.
# No protoc-c yet: packages.sh installs the build packages (as root) or says what is missing.
$(GEN_DIR)/%.pb-c.c $(GEN_DIR)/%.pb-c.h: $(PROTO_DIR)/%.proto $(PROTOS)
	@command -v $(PROTOC_C) >/dev/null 2>&1 || sh static/packages.sh build
	@mkdir -p $(GEN_DIR)
	$(PROTOC_C) -I$(PROTO_DIR) --c_out=$(GEN_DIR) $<

.PHONY: all run check unit integration runc vm fuzz fuzz-short lint format symcheck bench \
        packages clean distclean

all: $(BUILD)/supervisor

# A rebuilt dependency may change its headers (mbedtls_config.h sets struct layouts), so the
# dependency stamp is a real prerequisite here. Generated headers must exist before anything
# compiles; only session/ (the one module that speaks protobuf) recompiles when they change.
$(BUILD)/obj/%.o: %.c $(HDRS) $(DEPS_STAMP) | $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(PROD_CFLAGS) -c $< -o $@

$(BUILD)/obj/gen/%.o: $(GEN_DIR)/%.c $(GEN_HDRS) $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(PROD_CFLAGS) -c $< -o $@

# The archives are prerequisites: replacing one (LGPL relinking) relinks the binary.
$(filter $(BUILD)/obj/session/%,$(PROD_OBJS)): $(GEN_HDRS)

$(BUILD)/supervisor: $(PROD_OBJS) $(GEN_OBJS) $(DEPS_LIBS) $(DEPS_STAMP) static/check-static.sh
	$(MUSL_CC) $(PROD_LDFLAGS) -o $@ $(PROD_OBJS) $(GEN_OBJS) $(DEPS_LIBS) $(MUSL_LDLIBS_STATIC_PIE)
	@sh static/check-static.sh $@

# --- packages ---------------------------------------------------------------------------------
packages:
	@sh static/packages.sh build

# --- demo ----------------------------------------------------------------------------------------
run:
	@sh static/packages.sh run
	@$(MAKE) --no-print-directory all
	@/usr/bin/python3 tests/demo.py $(BUILD)/supervisor

# --- tests ---------------------------------------------------------------------------------------
# Tests link Debian's glibc builds of libseccomp, libcap, libnl, nghttp2, protobuf-c, libssh
# and libyaml (their -dev packages); inih is compiled from the same pinned source as the product,
# with the same options (its handler prototype depends on them). The Debian versions may be older
# than the pins (bookworm: nghttp2 1.52, protobuf-c 1.4, libssh 0.10, libyaml 0.2.5 as in
# trixie): see static/README.md.
INIH_SRC_DIR := $(DEPS_SRC_DIR)/libinih_$(VERSION_libinih)
# mbedTLS is the exception: the tests and fuzzers link the product's pinned 3.6 (same source tree
# and mbedtls_config.h), built once with the host gcc into build/deps-host by
# static/build-mbedtls-host.sh, so TLS 1.3, PSA and X.509 writing behave as they do in the
# product. Its -isystem comes first, ahead of Debian's 2.28 headers in /usr/include.
DEPS_HOST_DIR := $(BUILD)/deps-host
MBEDTLS_HOST_STAMP := $(DEPS_HOST_DIR)/.stamp-mbedtls@$(subst ~,_,$(VERSION_mbedtls))
MBEDTLS_HOST_LIBS := $(DEPS_HOST_DIR)/lib/libmbedtls.a $(DEPS_HOST_DIR)/lib/libmbedx509.a \
                     $(DEPS_HOST_DIR)/lib/libmbedcrypto.a
$(MBEDTLS_HOST_STAMP): static/build-mbedtls-host.sh static/lib.sh $(call deps_stamp,mbedtls)
	@DEPS_HOST_DIR='$(DEPS_HOST_DIR)' sh static/build-mbedtls-host.sh
	@touch $@
$(MBEDTLS_HOST_LIBS): | $(MBEDTLS_HOST_STAMP) ;
HOST_PKGS   := libnghttp2 libprotobuf-c libssh yaml-0.1
HOST_CFLAGS := -isystem $(DEPS_HOST_DIR)/include -isystem /usr/include/libnl3 \
               -isystem $(INIH_SRC_DIR) $(INIH_DEFINES) -I$(GEN_DIR) \
               $(shell pkg-config --cflags $(HOST_PKGS) 2>/dev/null)
TEST_CFLAGS := $(BASE_CFLAGS) $(HOST_CFLAGS) -O1 -g -fno-omit-frame-pointer \
               -fsanitize=address,undefined -fno-sanitize-recover=all
HOST_LIBS   := -lseccomp -lcap -lnl-route-3 -lnl-3 $(MBEDTLS_HOST_LIBS) \
               $(shell pkg-config --libs $(HOST_PKGS) 2>/dev/null || \
                       echo -lnghttp2 -lprotobuf-c -lssh -lyaml)
TEST_DEP_LIBS = $(BUILD)/test/obj/ini.o $(HOST_LIBS)
TEST_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -pthread)
TEST_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/test/obj/%.o) \
               $(GEN_SRCS:$(GEN_DIR)/%.c=$(BUILD)/test/obj/gen/%.o)
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/test/%)

$(BUILD)/test/obj/%.o: %.c $(HDRS) $(MBEDTLS_HOST_STAMP) | $(DEPS_STAMP) $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC_TEST) $(TEST_CFLAGS) -c $< -o $@

$(filter $(BUILD)/test/obj/session/%,$(TEST_OBJS)): $(GEN_HDRS)

$(BUILD)/test/obj/gen/%.o: $(GEN_DIR)/%.c $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC_TEST) $(TEST_CFLAGS) -c $< -o $@

$(BUILD)/test/obj/ini.o: | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC_TEST) $(TEST_CFLAGS) -w -c $(INIH_SRC_DIR)/ini.c -o $@

$(BUILD)/test/test_%: tests/unit/test_%.c $(TEST_OBJS) $(BUILD)/test/obj/ini.o $(GEN_HDRS) \
		$(MBEDTLS_HOST_LIBS)
	@mkdir -p $(dir $@)
	$(CC_TEST) $(TEST_CFLAGS) -o $@ $< $(TEST_OBJS) $(TEST_LIBS) $(TEST_DEP_LIBS)

# Objects reached only through the pattern rules above would count as intermediate and be
# deleted after each link, so every unit binary would recompile them all.
.SECONDARY: $(TEST_OBJS) $(GEN_SRCS) $(GEN_HDRS)

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "== $$t"; $$t || fail=$$((fail + 1)); done; \
	  echo "unit: $$(( $(words $(UNIT_BINS)) - fail )) passed, $$fail failed"; [ $$fail -eq 0 ]

integration: $(BUILD)/supervisor
	@/usr/bin/python3 tests/integration/run.py

runc: $(BUILD)/supervisor
	@sh tests/runc/run.sh

# QEMU guests (TCG; KVM when /dev/kvm exists): build/supervisor as a guest's PID 1 on Debian 12's
# kernel (Landlock ABI 2, with hard_requirement and best_effort, and booted without Landlock)
# and on this machine's kernel when its image is readable. Three or four boots, run two at a
# time; the guest kernel (apt-get download, never installed) and the initramfs are cached in
# build/vm. Part of `check`.
vm: $(BUILD)/supervisor
	@sh static/packages.sh vm
	@/usr/bin/python3 tests/vm/run.py

FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS   := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := $(BASE_CFLAGS) $(HOST_CFLAGS) -O1 -g $(FUZZ_SAN)
# The library is compiled once for every fuzzer (instrumented, without libFuzzer's main);
# each target then compiles only its own harness and links.
FUZZ_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o) \
               $(GEN_SRCS:$(GEN_DIR)/%.c=$(BUILD)/fuzz/obj/gen/%.o) $(BUILD)/fuzz/obj/ini.o

$(BUILD)/fuzz/obj/%.o: %.c $(HDRS) $(GEN_HDRS) $(MBEDTLS_HOST_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/fuzz/obj/gen/%.o: $(GEN_DIR)/%.c $(GEN_HDRS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/fuzz/obj/ini.o: | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -w -c $(INIH_SRC_DIR)/ini.c -o $@

.SECONDARY: $(FUZZ_OBJS)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS) $(HDRS) $(GEN_HDRS) $(MBEDTLS_HOST_LIBS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(HOST_LIBS)

FUZZ_SECONDS ?= 300
fuzz: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do \
	  n=$$(basename $$f); mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	  seeds=tests/fuzz/corpus/$$n; [ -d $$seeds ] || seeds=; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/fuzz/corpus-$$n $$seeds \
	    2>$(BUILD)/fuzz/$$n.log || { tail -40 $(BUILD)/fuzz/$$n.log; exit 1; }; \
	  grep -E 'stat::number_of_executed_units' $(BUILD)/fuzz/$$n.log | sed "s/^/$$n: /"; done

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

lint: $(GEN_HDRS) | $(DEPS_STAMP) $(MBEDTLS_HOST_STAMP)
	@LINT_CFLAGS="$(HOST_CFLAGS)" sh tests/lint.sh

symcheck: $(BUILD)/supervisor
	@sh tests/symcheck.sh $(PROD_OBJS)

check:
	@sh static/packages.sh test
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@$(MAKE) --no-print-directory -j$(JOBS) unit
	@$(MAKE) --no-print-directory -j$(JOBS) symcheck
	@$(MAKE) --no-print-directory -j$(JOBS) integration
	@$(MAKE) --no-print-directory -j$(JOBS) runc
	@$(MAKE) --no-print-directory vm
	@$(MAKE) --no-print-directory -j$(JOBS) fuzz-short
	@$(MAKE) --no-print-directory -j$(JOBS) lint

# The bench's comparison binary: the product with sv_fence_prepare wrapped to "no fence", so
# bench/startup.sh can show the mount fence's start-up cost. Never installed, never tested.
$(BUILD)/bench/supervisor-nofence: bench/nofence.c $(PROD_OBJS) $(GEN_OBJS) $(DEPS_LIBS) $(HDRS)
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(PROD_CFLAGS) -c bench/nofence.c -o $(BUILD)/bench/nofence.o
	$(MUSL_CC) $(PROD_LDFLAGS) -Wl,--wrap=sv_fence_prepare -o $@ $(BUILD)/bench/nofence.o \
		$(PROD_OBJS) $(GEN_OBJS) $(DEPS_LIBS) $(MUSL_LDLIBS_STATIC_PIE)

bench: $(BUILD)/supervisor $(BUILD)/bench/supervisor-nofence
	@sh static/packages.sh test
	@sh bench/startup.sh $(BUILD)/supervisor 200 $(BUILD)/bench/supervisor-nofence
	@/usr/bin/python3 bench/proxy.py $(BUILD)/supervisor
	@/usr/bin/python3 bench/gateway.py $(BUILD)/supervisor
	@/usr/bin/python3 bench/ssh.py $(BUILD)/supervisor

format:
	clang-format -i $(SRCS) $(HDRS) $(wildcard tests/unit/*.c tests/fuzz/*.c)

clean:
	rm -rf $(BUILD)/obj $(BUILD)/gen $(BUILD)/test $(BUILD)/fuzz $(BUILD)/supervisor

distclean:
	rm -rf $(BUILD)
