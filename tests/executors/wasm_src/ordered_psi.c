/* Private set intersection of two sorted line files (ascending byte order), in
 * the spirit of Teaclave's wasm_rust_psi / builtin-ordered-set-intersect.
 *
 * Arguments (data names): input1, input2, output1, output2 -> argc == 8.
 * Each output gets one character per line of its input: '1' if the line is in
 * both inputs, else '0'. Returns the number of matched lines of input 1, or a
 * negative code on error. Built without libc (see simple_add.c). */

int teaclave_open_input(const char *name);
int teaclave_create_output(const char *name);
int teaclave_read_file(int fd, char *buf, int len);
int teaclave_write_file(int fd, const char *buf, int len);
int teaclave_close_file(int fd);

#define MAX_FILE 65536
#define MAX_LINES 4096

static char data1[MAX_FILE];
static char data2[MAX_FILE];
static int starts1[MAX_LINES], lens1[MAX_LINES];
static int starts2[MAX_LINES], lens2[MAX_LINES];
static char marks1[MAX_LINES], marks2[MAX_LINES];

static int read_all(const char *name, char *buf) {
    int fd = teaclave_open_input(name);
    if (fd < 0) {
        return -1;
    }
    int total = 0;
    for (;;) {
        int n = teaclave_read_file(fd, buf + total, MAX_FILE - total);
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            break;
        }
        total += n;
        if (total == MAX_FILE) {
            return -1; /* too large for this demo */
        }
    }
    teaclave_close_file(fd);
    return total;
}

static int split_lines(const char *buf, int size, int *starts, int *lens) {
    int count = 0;
    int begin = 0;
    for (int i = 0; i <= size; i++) {
        if (i == size || buf[i] == '\n') {
            if (i > begin) {
                if (count == MAX_LINES) {
                    return -1;
                }
                starts[count] = begin;
                lens[count] = i - begin;
                count++;
            }
            begin = i + 1;
        }
    }
    return count;
}

static int compare(const char *a, int alen, const char *b, int blen) {
    int n = alen < blen ? alen : blen;
    for (int i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i];
        unsigned char y = (unsigned char)b[i];
        if (x != y) {
            return x < y ? -1 : 1;
        }
    }
    return alen == blen ? 0 : (alen < blen ? -1 : 1);
}

static int write_all(const char *name, const char *buf, int len) {
    int fd = teaclave_create_output(name);
    if (fd < 0) {
        return -1;
    }
    int done = 0;
    while (done < len) {
        int n = teaclave_write_file(fd, buf + done, len - done);
        if (n <= 0) {
            return -1;
        }
        done += n;
    }
    return teaclave_close_file(fd);
}

int entrypoint(int argc, char *argv[]) {
    if (argc != 8) {
        return -2;
    }
    int size1 = read_all(argv[1], data1);
    int size2 = read_all(argv[3], data2);
    if (size1 < 0 || size2 < 0) {
        return -3;
    }
    int n1 = split_lines(data1, size1, starts1, lens1);
    int n2 = split_lines(data2, size2, starts2, lens2);
    if (n1 < 0 || n2 < 0) {
        return -4;
    }
    int i = 0, j = 0, common = 0;
    for (int k = 0; k < n1; k++) marks1[k] = '0';
    for (int k = 0; k < n2; k++) marks2[k] = '0';
    while (i < n1 && j < n2) {
        int c = compare(data1 + starts1[i], lens1[i], data2 + starts2[j], lens2[j]);
        if (c == 0) {
            marks1[i] = '1';
            marks2[j] = '1';
            common++;
            i++;
            j++;
        } else if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    if (write_all(argv[5], marks1, n1) != 0 || write_all(argv[7], marks2, n2) != 0) {
        return -5;
    }
    return common;
}
