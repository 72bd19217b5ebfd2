/*
 * The seed example: two tasks that each sleep 2 s run concurrently, so the program takes about
 * 2 s (the sequential version, seed_sync.c, takes 4 s). Python original:
 *
 *     async def tarea():
 *         print("Inicio de tarea")
 *         await asyncio.sleep(2)
 *         print("Tarea completada")
 *
 *     async def main():
 *         await asyncio.gather(tarea(), tarea())
 *
 *     asyncio.run(main())
 */
#include <stdio.h>
#include <time.h>

#include <weft.h>

static int tarea(void *arg)
{
    (void)arg;
    printf("Inicio de tarea\n");
    int err = weft_sleep(2); /* suspends this task only */
    if (err < 0)
        return err;
    printf("Tarea completada\n");
    return 0;
}

static int main_task(void *arg)
{
    (void)arg;
    weft_task_t *t[2];
    int err = weft_spawn(&t[0], tarea, NULL);
    if (err < 0)
        return err;
    err = weft_spawn(&t[1], tarea, NULL);
    if (err < 0) {
        weft_task_release(t[0]);
        return err;
    }
    err = weft_gather(t, 2, NULL, 0); /* await asyncio.gather(tarea(), tarea()) */
    weft_task_release(t[0]);
    weft_task_release(t[1]);
    return err;
}

int main(void)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int err = weft_run(main_task, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (err < 0) {
        fprintf(stderr, "seed: %s\n", weft_strerror(err));
        return 1;
    }
    printf("Tiempo usado:  %.16g\n",
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
