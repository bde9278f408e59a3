// Boolean query parameters, read the way kube-apiserver converts url.Values into its option structs
// (ListOptions, PodLogOptions, PodExecOptions, PatchOptions): runtime.Convert_Slice_string_To_bool in
// k8s.io/apimachinery/pkg/runtime/conversion.go — absent, "0" or "false" in any case is false, every
// other value (True, t, yes, even an empty `follow=`) is true. Not strconv.ParseBool: `f` means true.

/** The first value of `name`, as the API server reads a boolean query parameter. */
export function queryBool(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  if (value === null) return false;
  return value !== '0' && value.toLowerCase() !== 'false';
}
