/*
 * The seed's sequential program: the same two tasks, one after the other with a blocking sleep,
 * so it takes about 4 s. Python original:
 *
 *     def tarea():
 *         print("Inicio de tarea")
 *         time.sleep(2)
 *         print("Tarea completada")
 *
 *     def main():
 *         tarea()
 *         tarea()
 */
#include <stdio.h>
#include <time.h>

static void tarea(void)
{
    printf("Inicio de tarea\n");
    struct timespec two = {2, 0};
    while (nanosleep(&two, &two) != 0) {
    }
    printf("Tarea completada\n");
}

int main(void)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tarea();
    tarea();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("Tiempo usado:  %.16g\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
