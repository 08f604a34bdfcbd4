# qc's CMake package: the runtime as qc::runtime, and qc_add_model() (qcModel.cmake).
#
#   find_package(qc CONFIG REQUIRED)      # -Dqc_DIR=$(python -m qc --cmake-dir), or an installed prefix
#   qc_add_model(minilm MODEL minilm.onnx SCHEME w8a8)
#   target_link_libraries(app PRIVATE minilm)
#
# From an installed prefix (cmake --install of qc's CMakeLists.txt) qc::runtime is the installed
# library; from the Python package it is built here, from the package's sources, as a static library.
include(CMakeFindDependencyMacro)
find_dependency(Threads)

if(EXISTS "${CMAKE_CURRENT_LIST_DIR}/qcTargets.cmake")
  include("${CMAKE_CURRENT_LIST_DIR}/qcTargets.cmake")
  include("${CMAKE_CURRENT_LIST_DIR}/qcRuntimeAlias.cmake")
  set(_qc_package_dir "")  # qcModel.cmake asks qc-config where the package is
else()
  get_filename_component(_qc_package_dir "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
endif()
if(_qc_package_dir AND NOT TARGET qc::runtime)
  add_library(qc_runtime STATIC "${_qc_package_dir}/runtime/qc_runtime.c" "${_qc_package_dir}/runtime/qc_api.c"
              "${_qc_package_dir}/runtime/qc_generate.c")
  target_include_directories(qc_runtime PUBLIC "${_qc_package_dir}/runtime/include"
                                        PRIVATE "${_qc_package_dir}/runtime")
  set_target_properties(qc_runtime PROPERTIES C_STANDARD 11 POSITION_INDEPENDENT_CODE ON)
  target_link_libraries(qc_runtime PUBLIC Threads::Threads ${CMAKE_DL_LIBS} m)
  add_library(qc::runtime ALIAS qc_runtime)
endif()

include("${CMAKE_CURRENT_LIST_DIR}/qcModel.cmake")
set(qc_FOUND TRUE)
