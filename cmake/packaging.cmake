# The man pages, and the Debian package that `cpack -G DEB` makes in the
# build folder from the install rules (binaries, agent, man pages, the
# CMake package).
#
# Included at the end of the top-level CMakeLists.txt: CPack packages what
# `cmake --install` installs, so every install() rule counts wherever it is.

# The pages are written by hand in doc/man; only the version is filled in.
foreach(_page esky.1 esky-shell.1)
  configure_file(${PROJECT_SOURCE_DIR}/doc/man/${_page} ${CMAKE_BINARY_DIR}/man/${_page} @ONLY)
  list(APPEND ESKY_MAN_PAGES ${CMAKE_BINARY_DIR}/man/${_page})
endforeach()
install(FILES ${ESKY_MAN_PAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME esky)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "esky")
set(CPACK_PACKAGE_CONTACT "esky maintainers <maintainers@users.noreply.r-seed-52e87edb.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "process checkpointer and snapshot debugger for Linux x86-64")
# Debian's extended description: lines after the summary, one space in.
set(CPACK_PACKAGE_DESCRIPTION
  "esky freezes a running process into a checkpoint file and thaws it later,
after the original is gone or after a reboot: the process carries on where
it stopped. esky-shell, built on it, runs a program under the checkpointer,
snapshots it at breakpoints or on a timer into a snapshot tree, and rewinds
by thawing any earlier snapshot. Single-threaded programs, dynamically or
statically linked, no root and no preloaded library needed.")
# The DEB generator would take CPACK_PACKAGE_INSTALL_DIRECTORY's default
# otherwise; a distribution package lives in /usr.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # esky_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the ELF files' needed libraries (dpkg-shlibdeps, from
# dpkg-dev; CPack also runs `file` to find them): libc6, libdwarf1,
# libelf1, libreadline8. The agent is static and needs nothing.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# esky resume --gdb, and esky-shell's gdb and gcore hand programs to gdb.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS gdb)

# `make package_source` must not sweep up build folders and git.
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/")

include(CPack)
