# CMake toolchain file: cross-compile weft for 64-bit ARM Linux with Debian's
# gcc-aarch64-linux-gnu, and run the tests (ctest) under qemu-user.
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# Packages: gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user (scripts/deps.sh cross).

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(WEFT_CROSS_TRIPLE aarch64-linux-gnu)
set(WEFT_CROSS_SYSROOT /usr/${WEFT_CROSS_TRIPLE})

set(CMAKE_C_COMPILER ${WEFT_CROSS_TRIPLE}-gcc)
# g++-aarch64-linux-gnu is not installed by deps.sh; use it only if present (weft is C).
find_program(WEFT_CROSS_CXX ${WEFT_CROSS_TRIPLE}-g++)
if(WEFT_CROSS_CXX)
  set(CMAKE_CXX_COMPILER ${WEFT_CROSS_CXX})
endif()

# Look for headers and libraries only in the target tree, for programs only on the host.
set(CMAKE_FIND_ROOT_PATH ${WEFT_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest (add_test with a target name as COMMAND) and try_run go through qemu-user.
# -L points the emulated dynamic loader at the arm64 libc; binfmt_misc is not needed.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;${WEFT_CROSS_SYSROOT})
