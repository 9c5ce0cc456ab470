/*
 * The limit: a plain librdkafka consumer-group member reading a pre-filled topic, with the same
 * settings as CrowdPulse's Swift consumer (cooperative-sticky, no commits, prefetch thresholds raised to
 * avoid librdkafka 2.0.2's queued.min.messages stall). Counts from the first message to the expected
 * total and prints messages/s.
 *
 * usage: rawconsume BOOTSTRAP TOPIC MESSAGES
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void set(rd_kafka_conf_t *conf, const char *key, const char *value) {
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s: %s\n", key, err);
        exit(2);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s BOOTSTRAP TOPIC MESSAGES\n", argv[0]);
        return 2;
    }
    long expected = atol(argv[3]);
    char group[64];
    snprintf(group, sizeof group, "rawconsume-%d-%ld", (int)getpid(), (long)time(NULL));

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", argv[1]);
    set(conf, "group.id", group);
    set(conf, "auto.offset.reset", "earliest");
    set(conf, "enable.auto.commit", "false");
    set(conf, "enable.auto.offset.store", "false");
    set(conf, "enable.partition.eof", "false");
    set(conf, "partition.assignment.strategy", "cooperative-sticky");
    set(conf, "queued.min.messages", "1000000");
    set(conf, "queued.max.messages.kbytes", "262144");

    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, argv[2], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t code = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (code) {
        fprintf(stderr, "subscribe: %s\n", rd_kafka_err2str(code));
        return 1;
    }

    long count = 0;
    unsigned long long bytes = 0, checksum = 0;
    double start = 0;
    double give_up = now() + 300;
    while (count < expected && now() < give_up) {
        rd_kafka_message_t *message = rd_kafka_consumer_poll(rk, 100);
        if (!message) continue;
        if (message->err) {
            if (message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "consume error: %s\n", rd_kafka_message_errstr(message));
            rd_kafka_message_destroy(message);
            continue;
        }
        if (count == 0) start = now();
        count++;
        bytes += message->len + message->key_len;
        checksum += (unsigned long long)message->offset + message->len;
        rd_kafka_message_destroy(message);
    }
    double seconds = now() - start;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    printf("c_consumer messages=%ld seconds=%.3f rate=%.0f mb_per_s=%.1f checksum=%llu\n", count, seconds,
           count / seconds, bytes / seconds / 1e6, checksum);
    return count == expected ? 0 : 1;
}
