# A bash program across a checkpoint: variables, arrays, functions and
# arithmetic before and after the sync point (@@sync on stderr, then a line
# read from stdin with the read builtin).
declare -a arr
declare -A assoc
for ((i = 0; i < 500; i++)); do
	arr[i]=$((i * i % 997))
	assoc["k$i"]=$((i * 7))
done
f() { echo "f called with $# args: $*"; }
total=0
for v in "${arr[@]}"; do total=$((total + v)); done
echo "before: total=$total n=${#arr[@]}"

echo "@@sync" >&2
read -r line
[ "$line" = go ] || { echo "expected go, got '$line'" >&2; exit 1; }

sum=0
for k in "${!assoc[@]}"; do sum=$((sum + assoc[$k])); done
echo "after: sum=$sum arr[123]=${arr[123]}"
f a "b c" d
str="hello checkpoint"
echo "${str^^} ${#str} ${str/check/save}"
exit 3
