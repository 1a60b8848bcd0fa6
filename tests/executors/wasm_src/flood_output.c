/* What an attacker wrote to fill the worker's memory: 20 000 blocks of 64 KiB
 * (1.31 GB) into output "out", ignoring every result of the host calls.
 * The output caps stop it (Limits.max_output_file_bytes / max_output_bytes).
 * Built as simple_add.c is (no libc). */

int teaclave_create_output(const char *name);
int teaclave_write_file(int fd, const void *buf, int len);
int teaclave_close_file(int fd);

static char block[65536];

int entrypoint(int argc, char *argv[]) {
    int out = teaclave_create_output("out");
    for (int i = 0; i < 20000; i++) {
        block[i % sizeof block] = (char)i;
        teaclave_write_file(out, block, sizeof block);
    }
    teaclave_close_file(out);
    return 0;
}
