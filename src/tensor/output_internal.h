/* output_internal.h - path helpers shared by output.c and output_check.c. Not installed. */
#ifndef NABLA_OUTPUT_INTERNAL_H
#define NABLA_OUTPUT_INTERNAL_H

#include <stdbool.h>
#include <sys/stat.h>

/* Longest part of a target's base name used in temporary and lock file names, so that
 * ".<base>.nabla.tmp.<pid>.XXXXXX" stays under NAME_MAX (255). */
#define NB_NAME_BASE_MAX 200
/* Symlinks followed before giving up (the kernel's limit is 40 too). */
#define NB_MAX_LINKS 40

/* A malloc'ed copy of s, or NULL. */
char *nb_dup_str(const char *s);
/* path's directory and base name, both malloc'ed: "a/b" -> "a" "b", "b" -> "." "b",
 * "/b" -> "/" "b". False when out of memory. */
bool nb_split_path(const char *path, char **dir, char **base);
/* Follows path through symlinks (chains too) to the file that is to be written, malloc'ed
 * in *out. *exists says whether that file exists (sb then holds its lstat); a dangling link
 * gives its (absent) target. Returns 0 or an errno value. */
int nb_resolve_target(const char *path, char **out, struct stat *sb, bool *exists);

#endif
