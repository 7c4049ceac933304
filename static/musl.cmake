# static/musl.cmake -- CMake toolchain file for building dependencies
# statically against musl into build/deps (used by static/lib.sh's
# configure_cmake; usable by hand with -DCMAKE_TOOLCHAIN_FILE=static/musl.cmake).
#
# Same machine, different libc: CMAKE_SYSTEM_NAME is left alone, so CMake
# does not consider this cross-compiling and try_run() still works (musl
# test programs run through /lib/ld-musl-*.so.1 from Debian's musl package).
# What matters is that nothing from the glibc world leaks in: all find_*()
# lookups for libraries, headers and packages are confined to DEPS_DIR, only
# static archives are accepted, and pkg-config only sees DEPS_DIR.
#
# DEPS_DIR: -DDEPS_DIR=..., else $ENV{DEPS_DIR}, else <repo>/build/deps.

if(NOT DEPS_DIR)
  if(DEFINED ENV{DEPS_DIR} AND NOT "$ENV{DEPS_DIR}" STREQUAL "")
    set(DEPS_DIR "$ENV{DEPS_DIR}")
  else()
    get_filename_component(DEPS_DIR "${CMAKE_CURRENT_LIST_DIR}/../build/deps" ABSOLUTE)
  endif()
endif()
get_filename_component(DEPS_DIR "${DEPS_DIR}" ABSOLUTE)
# try_compile() projects re-read this file without the cache: pass it on.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES DEPS_DIR)

set(CMAKE_C_COMPILER musl-gcc)

if(DEFINED ENV{DEPS_OPT_CFLAGS} AND NOT "$ENV{DEPS_OPT_CFLAGS}" STREQUAL "")
  set(_musl_opt "$ENV{DEPS_OPT_CFLAGS}")
else()
  set(_musl_opt "-Os -fPIE -ffunction-sections -fdata-sections")
endif()
# -isystem DEPS_DIR/include: kernel UAPI headers (musl-gcc can't see
# /usr/include/linux) and previously built dependencies.
set(CMAKE_C_FLAGS_INIT "${_musl_opt} -isystem ${DEPS_DIR}/include")
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
# Helper executables (try_compile, optional tools) link statically too.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(BUILD_SHARED_LIBS OFF CACHE BOOL "static only")

# Confine find_library/find_path/find_package to DEPS_DIR; programs
# (python, perl, ...) still come from the host.
set(CMAKE_FIND_ROOT_PATH "${DEPS_DIR}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
# Install prefix/libdir are left to the caller, as absolute paths
# (-DCMAKE_INSTALL_PREFIX=$DEPS_DIR -DCMAKE_INSTALL_LIBDIR=$DEPS_DIR/lib):
# CMake turns a relative PATH-typed -D value into one relative to the cwd.
set(ENV{PKG_CONFIG_LIBDIR} "${DEPS_DIR}/lib/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")
