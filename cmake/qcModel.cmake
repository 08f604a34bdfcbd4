# qc_add_model(<target> MODEL <file.onnx|file.mlir>
#              [SCHEME <scheme>|auto] [BUDGET_BITS <bits>] [CALIB <file.npz>]
#              [SHAPES <name>=<dims> ...] [EMIT static|shared] [NAME <c-name>] [WEIGHTS <store.safetensors>]
#              [OPTIONS <qc-compile flag> ...] [DEPENDS <target> ...])
#
# Runs qc-compile at build time and makes <target> a library to link:
#   target_link_libraries(app PRIVATE <target>)   # brings <name>.h (its include folder) and qc::runtime
# EMIT static (the default): lib<target>.a with the weights inside, so the program is one file.
# EMIT shared: lib<target>.so with lib<target>.qcw beside it (found there at run time).
# The C name (<name>_model(), <name>_run(), <name>.h) is <target> made a C identifier, or NAME.
# qc-compile re-runs when the model, the calibration file, the weights, the options or qc's own sources
# change. DEPENDS: targets that write those files (they run first).

set(QC_COMPILE "${QC_COMPILE}" CACHE FILEPATH "qc-compile of the Python environment that has qc")

# qc-compile: given, on PATH, in the active virtual environment, or beside this package.
if(NOT QC_COMPILE)
  set(_qc_hints "$ENV{VIRTUAL_ENV}/bin")
  if(_qc_package_dir)
    list(APPEND _qc_hints "${_qc_package_dir}/.venv/bin" "${_qc_package_dir}/../../../../bin")
  endif()
  find_program(_qc_compile_found qc-compile HINTS ${_qc_hints})
  if(_qc_compile_found)
    set(QC_COMPILE "${_qc_compile_found}" CACHE FILEPATH "qc-compile of the Python environment that has qc" FORCE)
  endif()
  unset(_qc_compile_found CACHE)
endif()

if(QC_COMPILE)
  get_filename_component(_qc_bin "${QC_COMPILE}" DIRECTORY)
  find_program(QC_CONFIG_EXECUTABLE qc-config HINTS "${_qc_bin}" NO_DEFAULT_PATH)
  if(QC_CONFIG_EXECUTABLE)
    execute_process(COMMAND "${QC_CONFIG_EXECUTABLE}" --python OUTPUT_VARIABLE QC_PYTHON  # qc's interpreter,
                    OUTPUT_STRIP_TRAILING_WHITESPACE)                                         # for model scripts
    execute_process(COMMAND "${QC_CONFIG_EXECUTABLE}" --package-dir OUTPUT_VARIABLE _qc_package_dir
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
  endif()
endif()

function(qc_add_model target)
  cmake_parse_arguments(PARSE_ARGV 1 QC "" "MODEL;SCHEME;BUDGET_BITS;CALIB;EMIT;NAME;WEIGHTS" "SHAPES;OPTIONS;DEPENDS")
  if(QC_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "qc_add_model(${target}): unknown arguments: ${QC_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT QC_MODEL)
    message(FATAL_ERROR "qc_add_model(${target}): MODEL <file.onnx|file.mlir> is required")
  endif()
  if(NOT QC_COMPILE)
    message(FATAL_ERROR "qc_add_model(${target}): qc-compile not found; put the Python environment that has qc "
                        "on PATH (or activate it), or configure with -DQC_COMPILE=/path/to/qc-compile")
  endif()
  if(NOT QC_EMIT)
    set(QC_EMIT static)
  endif()
  if(QC_EMIT STREQUAL "static")
    set(kind STATIC)
    set(suffix .a)
    set(emit static)
  elseif(QC_EMIT STREQUAL "shared")
    set(kind SHARED)
    set(suffix .so)
    set(emit so)
  else()
    message(FATAL_ERROR "qc_add_model(${target}): EMIT must be static or shared, got '${QC_EMIT}'")
  endif()
  if(NOT QC_NAME)
    string(MAKE_C_IDENTIFIER "${target}" QC_NAME)
  endif()

  get_filename_component(model "${QC_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/qc/${target}")
  file(MAKE_DIRECTORY "${dir}")
  set(library "${dir}/lib${target}${suffix}")
  set(header "${dir}/${QC_NAME}.h")
  set(outputs "${library}" "${header}")
  if(emit STREQUAL "so")
    list(APPEND outputs "${dir}/lib${target}.qcw")
  endif()

  set(args "${model}" -o "${library}" --emit ${emit} --name ${QC_NAME})
  set(depends "${model}")
  if(QC_SCHEME)
    list(APPEND args --scheme ${QC_SCHEME})
  endif()
  if(QC_BUDGET_BITS)
    list(APPEND args --budget-bits ${QC_BUDGET_BITS})
  endif()
  if(QC_CALIB)
    get_filename_component(calib "${QC_CALIB}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND args --calib "${calib}")
    list(APPEND depends "${calib}")
  endif()
  if(QC_WEIGHTS)
    get_filename_component(weights "${QC_WEIGHTS}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND args --weights "${weights}")
    list(APPEND depends "${weights}")
  endif()
  foreach(shape IN LISTS QC_SHAPES)
    list(APPEND args --shape ${shape})
  endforeach()
  list(APPEND args ${QC_OPTIONS})

  # The options as a file that changes only when they do: Makefiles do not track command lines.
  string(REPLACE ";" "\n" options_text "${args}")
  file(CONFIGURE OUTPUT "${dir}/options.txt" CONTENT "${options_text}\n")
  list(APPEND depends "${dir}/options.txt")
  if(_qc_package_dir)
    file(GLOB_RECURSE qc_sources "${_qc_package_dir}/__init__.py" "${_qc_package_dir}/core/*.py"
         "${_qc_package_dir}/compiler/*.py" "${_qc_package_dir}/dialects/*.py" "${_qc_package_dir}/passes/*.py"
         "${_qc_package_dir}/tools/*.py" "${_qc_package_dir}/runtime/*.py" "${_qc_package_dir}/runtime/*.c"
         "${_qc_package_dir}/runtime/*.h")
    list(APPEND depends ${qc_sources})
  endif()

  add_custom_command(OUTPUT ${outputs}
                     COMMAND "${QC_COMPILE}" ${args}
                     DEPENDS ${depends}
                     COMMENT "qc-compile ${QC_MODEL} -> lib${target}${suffix}"
                     VERBATIM)
  add_custom_target(${target}_qc_compile DEPENDS ${outputs})
  add_library(${target} ${kind} IMPORTED GLOBAL)
  set_target_properties(${target} PROPERTIES
                        IMPORTED_LOCATION "${library}"
                        INTERFACE_INCLUDE_DIRECTORIES "${dir}"
                        INTERFACE_LINK_LIBRARIES qc::runtime)
  if(emit STREQUAL "so")
    set_target_properties(${target} PROPERTIES IMPORTED_SONAME "lib${target}${suffix}")
  endif()
  if(QC_DEPENDS)
    add_dependencies(${target}_qc_compile ${QC_DEPENDS})
  endif()
  add_dependencies(${target} ${target}_qc_compile)
endfunction()
