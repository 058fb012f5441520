# millrace_generate_api_types(<root> <out_dir>): runs scripts/gen-api, which writes the C++ API
# types from crds/schemas/ into <out_dir>/crds/api_types.gen.{h,cc}, whenever a schema, the list of
# kinds or the generator changes. Sets MILLRACE_API_TYPES_SOURCE to the .cc; add <out_dir> to the
# include path. Used by crds/CMakeLists.txt and by the fuzz project (tests/fuzz).
function(millrace_generate_api_types root out_dir)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  file(GLOB schemas CONFIGURE_DEPENDS ${root}/crds/schemas/*.yaml)
  add_custom_command(
    OUTPUT ${out_dir}/crds/api_types.gen.h ${out_dir}/crds/api_types.gen.cc
    COMMAND Python3::Interpreter ${root}/scripts/gen-api ${out_dir}
    DEPENDS ${root}/scripts/gen-api ${root}/scripts/gen-crds ${root}/crds/kinds.def ${schemas}
    COMMENT "Generating the API types from crds/schemas/"
    VERBATIM)
  set(MILLRACE_API_TYPES_SOURCE ${out_dir}/crds/api_types.gen.cc PARENT_SCOPE)
endfunction()
