/* Teaclave's wasm_c_simple_add contract: argv = {"adder1", a, "adder2", b}.
 * Built with: clang --target=wasm32 -nostdlib -Wl,--no-entry -Wl,--export-all
 *             -Wl,--allow-undefined (no libc, so a local atoi). */

static int parse_int(const char *s) {
    int sign = 1;
    int value = 0;
    if (*s == '-') {
        sign = -1;
        s++;
    }
    while (*s >= '0' && *s <= '9') {
        value = value * 10 + (*s - '0');
        s++;
    }
    return sign * value;
}

int entrypoint(int argc, char *argv[]) {
    if (argc < 4) {
        return -1;
    }
    return parse_int(argv[1]) + parse_int(argv[3]);
}
