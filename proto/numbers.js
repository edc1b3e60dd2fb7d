// int64 fields decode to JS numbers, as the generated .d.ts declares: protobufjs would otherwise
// return Long objects because the `long` package is installed. Millisecond times fit in 2^53.
import $protobuf from "protobufjs/minimal.js";

$protobuf.util.Long = undefined;
$protobuf.configure();
