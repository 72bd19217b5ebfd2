# Modules: a directory src/NAME/ with a CMakeLists.txt is a library of its own (libweft-NAME),
# built over the core with an outside dependency, with its header include/weft/NAME.h, its
# pkg-config file weft-NAME.pc and its tests in test/NAME/. The core never includes a module.
#
# A module's CMakeLists.txt, in outline:
#   find_package(OpenSSL 3)                              # or pkg_check_modules(...)
#   weft_module_option(TLS "TLS streams on OpenSSL" OPENSSL_FOUND)
#   if(NOT WEFT_TLS_ENABLED)
#     return()
#   endif()
#   weft_add_module(tls SOURCES ctx.c stream.c ... LIBS OpenSSL::SSL
#                   PC_REQUIRES "libssl libcrypto" DESCRIPTION "weft: TLS streams")
#
# Test labels: every test of module NAME is labelled NAME; a module adds the label `memcheck`
# to tests the valgrind stage must run and `tsan` to tests the TSan stage must run
# (set_tests_properties(... APPEND PROPERTY LABELS memcheck)).

# weft_module_option(NAME DESCRIPTION FOUND_VAR): the cache variable WEFT_WITH_<NAME>, one of
# AUTO (the default: on when the dependency was found), ON (a missing dependency is an error) or
# OFF. WEFT_REQUIRE_MODULES=ON (CI) makes AUTO behave as ON. Sets WEFT_<NAME>_ENABLED.
macro(weft_module_option name description found)
  set(WEFT_WITH_${name} AUTO CACHE STRING "${description}: AUTO, ON or OFF")
  set_property(CACHE WEFT_WITH_${name} PROPERTY STRINGS AUTO ON OFF)
  set(_weft_mode ${WEFT_WITH_${name}})
  if(_weft_mode STREQUAL "AUTO" AND WEFT_REQUIRE_MODULES)
    set(_weft_mode ON)
  endif()
  if(_weft_mode STREQUAL "OFF")
    set(WEFT_${name}_ENABLED OFF)
  elseif(${found})
    set(WEFT_${name}_ENABLED ON)
  elseif(_weft_mode STREQUAL "AUTO")
    set(WEFT_${name}_ENABLED OFF)
    message(STATUS "weft: module ${name} off (its dependency was not found)")
  else()
    message(FATAL_ERROR "weft: module ${name} is required (WEFT_WITH_${name}=ON or "
                        "WEFT_REQUIRE_MODULES=ON) but its dependency was not found; "
                        "scripts/deps.sh installs it")
  endif()
  if(WEFT_${name}_ENABLED)
    message(STATUS "weft: module ${name} on")
  endif()
endmacro()

# weft_add_module(name SOURCES src... [LIBS target...] [PC_REQUIRES "pkg ..."]
#                 [PC_LIBS_PRIVATE "-lx ..."] [DESCRIPTION "..."] [TEST_LIBS target...])
# Makes weft_<name> (static, libweft-<name>.a) and weft_<name>_shared (libweft-<name>.so),
# weft-<name>.pc, the install rules, and one test per test/<name>/*_test.c (label <name>).
function(weft_add_module name)
  cmake_parse_arguments(M "" "PC_REQUIRES;PC_LIBS_PRIVATE;DESCRIPTION" "SOURCES;LIBS;TEST_LIBS" ${ARGN})
  add_library(weft_${name}_objects OBJECT ${M_SOURCES})
  target_include_directories(weft_${name}_objects
    PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    PRIVATE ${PROJECT_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})
  target_compile_options(weft_${name}_objects PRIVATE $<$<COMPILE_LANGUAGE:C>:${WEFT_WARNINGS}>)
  target_link_libraries(weft_${name}_objects PUBLIC ${M_LIBS})

  add_library(weft_${name} STATIC $<TARGET_OBJECTS:weft_${name}_objects>)
  set_target_properties(weft_${name} PROPERTIES OUTPUT_NAME weft-${name})
  target_include_directories(weft_${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>)
  target_link_libraries(weft_${name} PUBLIC weft_static ${M_LIBS})

  add_library(weft_${name}_shared SHARED $<TARGET_OBJECTS:weft_${name}_objects>)
  set_target_properties(weft_${name}_shared PROPERTIES OUTPUT_NAME weft-${name}
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
  target_include_directories(weft_${name}_shared PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>)
  target_link_libraries(weft_${name}_shared PUBLIC weft_shared ${M_LIBS})

  if(NOT M_DESCRIPTION)
    set(M_DESCRIPTION "weft module ${name}")
  endif()
  set(WEFT_MODULE_NAME ${name})
  set(WEFT_MODULE_DESCRIPTION "${M_DESCRIPTION}")
  set(WEFT_MODULE_REQUIRES "${M_PC_REQUIRES}")
  set(WEFT_MODULE_LIBS_PRIVATE "${M_PC_LIBS_PRIVATE}")
  configure_file(${PROJECT_SOURCE_DIR}/cmake/weft-module.pc.in
                 ${PROJECT_BINARY_DIR}/weft-${name}.pc @ONLY)
  install(TARGETS weft_${name} weft_${name}_shared
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(FILES ${PROJECT_BINARY_DIR}/weft-${name}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

  if(WEFT_BUILD_TESTS AND NOT WEFT_CORE_TESTS_ONLY)
    file(GLOB tests CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/test/${name}/*_test.c)
    foreach(src ${tests})
      get_filename_component(n ${src} NAME_WE)
      weft_add_test(${name}_${n} ${src} LABELS ${name} TIMEOUT 120
                    LIBS weft_${name} ${M_TEST_LIBS})
      target_include_directories(${name}_${n} PRIVATE ${PROJECT_SOURCE_DIR}/test/${name})
    endforeach()
  endif()
endfunction()
