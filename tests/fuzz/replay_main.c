/*
 * replay_main.c - a main() for the fuzz harnesses in builds without
 * libFuzzer (gcc, or SP_FUZZ=OFF): it feeds every file named on the
 * command line (or every file in a named directory) to
 * LLVMFuzzerTestOneInput once, so the seed corpus and the regression
 * inputs run in every build.
 *
 * usage: fuzz_NAME_replay FILE|DIR...
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_MAX_INPUT (1024 * 1024) /* bytes read from one input file */
#define REPLAY_MAX_FILES 4096          /* files taken from one directory */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read one file (at most REPLAY_MAX_INPUT bytes) and run it; 0 or -1. */
static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  uint8_t *buf = malloc(REPLAY_MAX_INPUT);
  if (!buf) {
    fclose(f);
    return -1;
  }
  size_t n = fread(buf, 1, REPLAY_MAX_INPUT, f);
  fclose(f);
  /* Copy into an exact-size block so ASan sees reads past the input. */
  uint8_t *exact = malloc(n ? n : 1);
  if (!exact) {
    free(buf);
    return -1;
  }
  memcpy(exact, buf, n);
  free(buf);
  fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

/* Compare two directory entry names for qsort. */
static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every regular file in a directory, in name order; count or -1. */
static int replay_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
    return -1;
  }
  char *names[REPLAY_MAX_FILES];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < REPLAY_MAX_FILES) {
    if (e->d_name[0] == '.')
      continue;
    names[n] = strdup(e->d_name);
    if (names[n])
      n++;
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof(names[0]), cmp_names);
  int ran = 0, rc = 0;
  for (int i = 0; i < n; i++) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    free(names[i]);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    if (replay_file(path) != 0)
      rc = -1;
    else
      ran++;
  }
  return rc == 0 ? ran : -1;
}

/* Replay every input given; exit 0 when all ran (a crash aborts). */
int main(int argc, char **argv) {
  int total = 0;
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
      return 1;
    }
    int n = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
    if (n < 0)
      return 1;
    total += S_ISDIR(st.st_mode) ? n : 1;
  }
  printf("replay: %d inputs ran without a crash\n", total);
  return 0;
}
