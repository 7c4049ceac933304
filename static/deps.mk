# static/deps.mk -- C dependencies built from Debian source packages,
# statically, against musl, into $(DEPS_DIR). Included by the top-level
# Makefile; every path here is relative to the repository root (make's cwd).
#
# Exports:
#   DEPS_DIR       build/deps (include/, lib/, stamps)
#   DEPS_STAMP     build/deps/.stamp-all: make it a prerequisite of anything
#                  that needs the dependencies (objects too: a rebuilt
#                  dependency may change its headers, e.g. mbedtls_config.h)
#   DEPS_CFLAGS    -isystem flags (+ INIH_DEFINES) for our own objects
#   DEPS_LIBS      the .a files, in link order; usable as prerequisites, so
#                  replacing one (LGPL relinking) makes `make` relink
#   INIH_DEFINES   compile-time options libinih.a was built with
#   MUSL_LDFLAGS_STATIC_PIE  link flags for a genuine static PIE with musl-gcc
#   MUSL_LDFLAGS_STATIC      plain static (non-PIE) fallback: -static
#   $(call deps_stamp,NAME)  stamp of one dependency, e.g. NAME=mbedtls
#
# Typical use:
#   include static/deps.mk
#   CC := musl-gcc
#   build/%.o: %.c $(DEPS_STAMP)
#           $(CC) $(CFLAGS) $(DEPS_CFLAGS) -c $< -o $@
#   build/supervisor: $(OBJS) $(DEPS_LIBS)
#           $(CC) $(CFLAGS) $(MUSL_LDFLAGS_STATIC_PIE) -Wl,--gc-sections -o $@ \
#                   $(OBJS) $(DEPS_LIBS)
#
# Adding a dependency (see static/README.md): a VERSION_<pkg> line in
# static/versions.mk, a static/build-<pkg>.sh, and here: <pkg> in DEPS plus
# LIBS_<pkg> (and CFLAGS_<pkg> / DEPS_AFTER_<pkg> if needed).

# Do not let the first rule below become the includer's default goal.
_deps_saved_goal := $(.DEFAULT_GOAL)

DEPS_STATIC_DIR ?= static
include $(DEPS_STATIC_DIR)/versions.mk

DEPS_DIR        := build/deps
DEPS_SRC_DIR    := build/src
DEPS_LOG_DIR    := build/logs
DEPS_CC         := musl-gcc
DEPS_OPT_CFLAGS := -Os -fPIE -ffunction-sections -fdata-sections

# inih compile-time options. INI_HANDLER_LINENO=1 changes the handler
# prototype (adds `int lineno`), so everything including <ini.h> must use
# these too (they are part of DEPS_CFLAGS, and baked into the installed
# ini.h as defaults).
INIH_DEFINES := -DINI_ALLOW_MULTILINE=0 -DINI_STOP_ON_FIRST_ERROR=1 \
	-DINI_HANDLER_LINENO=1 -DINI_MAX_LINE=4096 -DINI_USE_STACK=1 \
	-DINI_ALLOW_INLINE_COMMENTS=1

# ------------------------------------------------------------ dependencies
# DEPS is in link order: a library before the libraries it uses.
# Per dependency (name = Debian source package = static/build-<name>.sh):
#   LIBS_<name>        its archives, -l style, in link order
#   CFLAGS_<name>      extra compile flags for users of its headers
#   DEPS_AFTER_<name>  dependencies that must be built (installed) first
#   PREREQS_<name>     extra files whose change must rebuild it
DEPS := libssh mbedtls nghttp2 protobuf-c libnl3 libseccomp libcap2 libinih libyaml

LIBS_libnl3       := -lnl-route-3 -lnl-3
CFLAGS_libnl3     := -isystem $(DEPS_DIR)/include/libnl3
LIBS_libseccomp   := -lseccomp
LIBS_libcap2      := -lcap
LIBS_libinih      := -linih
CFLAGS_libinih    := $(INIH_DEFINES)
PREREQS_libinih   := $(DEPS_STATIC_DIR)/deps.mk

# libyaml: the YAML policy loader's event parser (supervisor/policy/policy_yaml.c).
LIBS_libyaml      := -lyaml

# mbed TLS: SHA-256 for the proxy's TOFU pins now, TLS later. Its three
# archives in their own link order (TLS uses X.509 uses crypto). Anything
# that links against it goes before it in DEPS (e.g. "libssh mbedtls").
LIBS_mbedtls      := -lmbedtls -lmbedx509 -lmbedcrypto
PREREQS_mbedtls   := $(DEPS_STATIC_DIR)/musl.cmake

# libssh: the SSH server (session/ssh/sshd_*), on mbedTLS, so it links before it and is built after
# it. LIBSSH_STATIC: no dllimport games (a no-op on Linux, set for the record).
LIBS_libssh       := -lssh
CFLAGS_libssh     := -DLIBSSH_STATIC=1
DEPS_AFTER_libssh := mbedtls
PREREQS_libssh    := $(DEPS_STATIC_DIR)/musl.cmake

# nghttp2: HTTP/2 framing for the gateway's gRPC client (no TLS of its own).
LIBS_nghttp2      := -lnghttp2
CFLAGS_nghttp2    := -DNGHTTP2_STATICLIB
PREREQS_nghttp2   := $(DEPS_STATIC_DIR)/musl.cmake

# protobuf-c: the runtime behind the protoc-c generated build/gen/*.pb-c.c.
LIBS_protobuf-c   := -lprotobuf-c

# ------------------------------------------------------------ exports
DEPS_STAMP  := $(DEPS_DIR)/.stamp-all
DEPS_CFLAGS := -isystem $(DEPS_DIR)/include $(foreach d,$(DEPS),$(CFLAGS_$(d)))
DEPS_LIBS   := $(patsubst -l%,$(DEPS_DIR)/lib/lib%.a,$(foreach d,$(DEPS),$(LIBS_$(d))))

# Static PIE with Debian's musl-gcc. Its specs file replaces gcc's *link and
# *startfile specs without handling -static-pie, so `musl-gcc -static-pie`
# quietly produces a *dynamic* PIE (INTERP /lib/ld-musl-x86_64.so.1, NEEDED
# libc.so). Instead: drop the default start files (Scrt1.o has no
# self-relocation), link musl's rcrt1.o (start code that applies the PIE's
# own relocations, then enters libc) and ask ld for a static PIE.
# crti/crtn and gcc's crtbeginS/crtendS are deliberately left out: musl has
# weak no-op _init/_fini and runs .init_array itself, and the crtbegin/end
# pair only serves C++/TM-clone/frame-registry machinery that C never uses.
# That keeps it one position-independent variable: put it anywhere among the
# link flags (no trailing objects needed). Verified: no INTERP, no NEEDED,
# ET_DYN, constructors/atexit/stack protector/ASLR work, -z relro -z now ok.
DEPS_HOST_CC      := gcc
MUSL_LIBDIR       := /usr/lib/$(subst -gnu,-musl,$(shell $(DEPS_HOST_CC) -dumpmachine 2>/dev/null || echo x86_64-linux-gnu))
MUSL_LDFLAGS_STATIC_PIE := -nostartfiles -Wl,-static -Wl,-pie \
	-Wl,--no-dynamic-linker -Wl,-z,text $(MUSL_LIBDIR)/rcrt1.o
# Plain static (ET_EXEC) fallback.
MUSL_LDFLAGS_STATIC := -static

# ------------------------------------------------------------ rules
# Stamps carry the pinned version, so bumping one pin rebuilds only that
# dependency (':' and '~' are not usable in make target names).
deps_stamp = $(DEPS_DIR)/.stamp-$(1)@$(subst :,_,$(subst ~,_,$(VERSION_$(1))))
_deps_env = DEPS_DIR='$(DEPS_DIR)' DEPS_SRC_DIR='$(DEPS_SRC_DIR)' \
	DEPS_LOG_DIR='$(DEPS_LOG_DIR)' DEPS_CC='$(DEPS_CC)' \
	DEPS_OPT_CFLAGS='$(DEPS_OPT_CFLAGS)' INIH_DEFINES='$(INIH_DEFINES)'
_deps_common = $(DEPS_STATIC_DIR)/lib.sh

# Kernel UAPI headers for musl-gcc (refreshed when linux-libc-dev changes).
KHEADERS_STAMP := $(DEPS_DIR)/.stamp-kheaders
$(KHEADERS_STAMP): $(DEPS_STATIC_DIR)/build-kheaders.sh $(DEPS_STATIC_DIR)/lib.sh \
		$(wildcard /usr/include/linux/version.h)
	@$(_deps_env) $(DEPS_STATIC_DIR)/build-kheaders.sh
	@touch $@

define _deps_rule
$(call deps_stamp,$(1)): $(DEPS_STATIC_DIR)/build-$(1).sh $(_deps_common) $(PREREQS_$(1)) \
		$(foreach d,$(DEPS_AFTER_$(1)),$(call deps_stamp,$(d))) | $(KHEADERS_STAMP)
	@$$(_deps_env) $(DEPS_STATIC_DIR)/build-$(1).sh
	@touch $$@
endef
$(foreach d,$(sort $(DEPS)),$(eval $(call _deps_rule,$(d))))

$(DEPS_STAMP): $(foreach d,$(DEPS),$(call deps_stamp,$(d)))
	@touch $@

# The archives appear with their stamp; no recipe of their own, and their
# own mtime (not the stamp's) decides whether a binary needs relinking.
$(DEPS_LIBS): | $(DEPS_STAMP) ;

.DEFAULT_GOAL := $(_deps_saved_goal)
