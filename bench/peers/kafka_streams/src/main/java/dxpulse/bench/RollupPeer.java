package dxpulse.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * dxpulse's rollup job as a Kafka Streams application, for the peer rows of the benchmarks.
 *
 * <p>Per report: keep the latest snapshot per reporter of its (indicator, period) by observation
 * time (the event id breaks ties), keep per scope running sums of those snapshots, and publish the
 * rollup of every scope the reporter belongs to. Both stores are Kafka Streams' default persistent
 * stores (RocksDB, with a changelog topic). Reports are keyed by "indicator|period", so every store
 * key of a report lives in its own partition's task: no repartition topic is needed.
 *
 * <p>Arguments: bootstrap, application id, reports topic, output topic, job spec (JSON: each
 * indicator's kind and items, each (indicator, period)'s scopes with their expected reporters),
 * state folder.
 */
public final class RollupPeer {
  static final String LATEST = "latest";
  static final String TALLIES = "tallies";
  static final ObjectMapper JSON = new ObjectMapper();

  private RollupPeer() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 6) {
      System.err.println("usage: RollupPeer BOOTSTRAP APP_ID INPUT OUTPUT SPEC STATE_DIR");
      System.exit(2);
    }
    Spec spec = Spec.read(Path.of(args[4]));
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(StreamsConfig.STATE_DIR_CONFIG, args[5]);
    // Static membership, as a single instance restarted in place is run: without it the group
    // keeps the closed member until its session times out (45 s), since Kafka Streams does not
    // leave the group on close unless the member is static (CloseOptions.leaveGroup).
    props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, args[1] + "-instance-1");
    StreamsBuilder builder = new StreamsBuilder();
    for (String store : List.of(LATEST, TALLIES)) {
      builder.addStateStore(
          Stores.keyValueStoreBuilder(
              Stores.persistentKeyValueStore(store), Serdes.String(), Serdes.String()));
    }
    builder.stream(args[2], Consumed.with(Serdes.String(), Serdes.String()))
        .process(() -> new RollupProcessor(spec), LATEST, TALLIES)
        .to(args[3], Produced.with(Serdes.String(), Serdes.String()));
    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch closed = new CountDownLatch(1);
    streams.setUncaughtExceptionHandler(
        error -> {
          error.printStackTrace();
          return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    streams.setStateListener(
        (now, before) -> {
          if (now == KafkaStreams.State.ERROR) {
            System.err.println("Kafka Streams failed: exiting");
            Runtime.getRuntime().halt(1);
          }
        });
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  // Leave the group at once, as faust's worker does on SIGTERM.
                  streams.close(
                      new KafkaStreams.CloseOptions().leaveGroup(true).timeout(Duration.ofSeconds(60)));
                  closed.countDown();
                }));
    streams.start();
    closed.await();
  }

  /** The job's catalog and registry, as the bench writes them for its synthetic workload. */
  record Spec(Map<String, Indicator> indicators, Map<String, Map<String, Set<String>>> scopes) {
    static Spec read(Path path) throws IOException {
      JsonNode root = JSON.readTree(path.toFile());
      Map<String, Indicator> indicators = new HashMap<>();
      root.get("indicators")
          .fields()
          .forEachRemaining(
              entry -> {
                List<String> items = new java.util.ArrayList<>();
                entry.getValue().get("items").forEach(item -> items.add(item.asText()));
                indicators.put(
                    entry.getKey(), new Indicator(entry.getValue().get("kind").asText(), items));
              });
      Map<String, Map<String, Set<String>>> scopes = new HashMap<>();
      root.get("scopes")
          .fields()
          .forEachRemaining(
              entry -> {
                Map<String, Set<String>> byScope = new LinkedHashMap<>();
                entry
                    .getValue()
                    .fields()
                    .forEachRemaining(
                        scope -> {
                          Set<String> reporters = new HashSet<>();
                          scope.getValue().forEach(reporter -> reporters.add(reporter.asText()));
                          byScope.put(scope.getKey(), reporters);
                        });
                scopes.put(entry.getKey(), byScope);
              });
      return new Spec(indicators, scopes);
    }
  }

  record Indicator(String kind, List<String> items) {}

  /** A reporter's latest value: observation time in microseconds, event id, the value's JSON. */
  record Snapshot(long observedUs, String eventId, JsonNode value) {
    boolean newerThan(Snapshot other) {
      return observedUs > other.observedUs
          || (observedUs == other.observedUs && eventId.compareTo(other.eventId) > 0);
    }

    String encode() {
      return observedUs + "|" + eventId + "|" + value.toString();
    }

    static Snapshot decode(String text) throws IOException {
      String[] parts = text.split("\\|", 3);
      return new Snapshot(Long.parseLong(parts[0]), parts[1], JSON.readTree(parts[2]));
    }
  }

  /** One scope's running sums over its reporters' latest snapshots. */
  static final class Tally {
    long reported;
    long flags;
    double numerator;
    double denominator;
    long values;
    long newestUs = Long.MIN_VALUE;
    final Map<String, Long> items = new TreeMap<>();

    void swap(Snapshot old, Snapshot next) {
      if (old == null) {
        reported += 1;
      } else {
        count(old.value(), -1);
      }
      count(next.value(), 1);
      newestUs = Math.max(newestUs, next.observedUs());
    }

    private void count(JsonNode value, int sign) {
      switch (value.get("kind").asText()) {
        case "flag" -> flags += value.get("value").asBoolean() ? sign : 0;
        case "ratio" -> {
          numerator += sign * value.get("numerator").asDouble();
          denominator += sign * value.get("denominator").asDouble();
        }
        case "count" -> {
          values += sign;
          numerator += sign * value.get("value").asDouble();
        }
        default -> {
          Set<String> done = new HashSet<>();
          value.get("done").forEach(item -> done.add(item.asText()));
          for (String item : done) {
            long held = items.getOrDefault(item, 0L) + sign;
            if (held == 0) {
              items.remove(item);
            } else {
              items.put(item, held);
            }
          }
        }
      }
    }

    String encode() {
      StringBuilder text =
          new StringBuilder()
              .append(reported).append(',').append(flags).append(',')
              .append(numerator).append(',').append(denominator).append(',')
              .append(values).append(',').append(newestUs);
      for (Map.Entry<String, Long> item : items.entrySet()) {
        text.append(',').append(item.getKey()).append('=').append(item.getValue());
      }
      return text.toString();
    }

    static Tally decode(String text) {
      Tally tally = new Tally();
      String[] parts = text.split(",");
      tally.reported = Long.parseLong(parts[0]);
      tally.flags = Long.parseLong(parts[1]);
      tally.numerator = Double.parseDouble(parts[2]);
      tally.denominator = Double.parseDouble(parts[3]);
      tally.values = Long.parseLong(parts[4]);
      tally.newestUs = Long.parseLong(parts[5]);
      for (int i = 6; i < parts.length; i++) {
        int at = parts[i].lastIndexOf('=');
        tally.items.put(parts[i].substring(0, at), Long.parseLong(parts[i].substring(at + 1)));
      }
      return tally;
    }

    String rollup(String indicatorId, Indicator indicator, String period, String scope, int expected) {
      double num;
      Double den;
      long lagging = 0;
      switch (indicator.kind()) {
        case "flag" -> {
          num = flags;
          den = (double) expected;
          lagging = expected - flags;
        }
        case "ratio" -> {
          num = numerator;
          den = denominator;
        }
        case "count" -> {
          num = values > 0 ? numerator : 0.0;
          den = null;
        }
        default -> {
          num = indicator.items().stream().filter(item -> items.getOrDefault(item, 0L) > 0).count();
          den = (double) indicator.items().size();
        }
      }
      ObjectNode body = JSON.createObjectNode();
      body.put("indicator", indicatorId).put("period", period).put("scope", scope);
      body.put("kind", indicator.kind());
      if (indicator.kind().equals("count")) {
        body.put("value", num);
      } else if (den != 0.0) {
        body.put("value", num / den);
      } else {
        body.putNull("value");
      }
      body.put("numerator", num);
      if (den == null) {
        body.putNull("denominator");
      } else {
        body.put("denominator", den);
      }
      body.put("reporters_reported", reported).put("reporters_expected", expected);
      if (newestUs == Long.MIN_VALUE) {
        body.putNull("latest_observed_us");
      } else {
        body.put("latest_observed_us", newestUs);
      }
      body.put("lagging_count", lagging).put("not_reported_count", expected - reported);
      return body.toString();
    }
  }

  /** The job itself: one report in, the rollups of the scopes it changed out. */
  static final class RollupProcessor implements Processor<String, String, String, String> {
    private final Spec spec;
    private ProcessorContext<String, String> context;
    private KeyValueStore<String, String> latest;
    private KeyValueStore<String, String> tallies;

    RollupProcessor(Spec spec) {
      this.spec = spec;
    }

    @Override
    public void init(ProcessorContext<String, String> context) {
      this.context = context;
      this.latest = context.getStateStore(LATEST);
      this.tallies = context.getStateStore(TALLIES);
    }

    @Override
    public void process(Record<String, String> record) {
      try {
        handle(record);
      } catch (IOException error) {
        throw new IllegalStateException("undecodable record at key " + record.key(), error);
      }
    }

    private void handle(Record<String, String> record) throws IOException {
      JsonNode report = JSON.readTree(record.value());
      String indicatorId = report.get("indicator").asText();
      String period = report.get("period").asText();
      String reporter = report.get("reporter").asText();
      String pair = indicatorId + "|" + period;
      Map<String, Set<String>> scopes = spec.scopes().get(pair);
      Indicator indicator = spec.indicators().get(indicatorId);
      if (scopes == null || indicator == null) {
        return; // not in the catalog: the aggregator's validation would have refused it
      }
      Instant observed = OffsetDateTime.parse(report.get("observed_at").asText()).toInstant();
      Snapshot next =
          new Snapshot(
              observed.getEpochSecond() * 1_000_000L + observed.getNano() / 1_000,
              report.get("event_id").asText(),
              report.get("value"));
      String snapshotKey = pair + "|" + reporter;
      String stored = latest.get(snapshotKey);
      Snapshot old = stored == null ? null : Snapshot.decode(stored);
      if (old != null && !next.newerThan(old)) {
        return; // a duplicate or an older observation arriving late
      }
      latest.put(snapshotKey, next.encode());
      Iterator<Map.Entry<String, Set<String>>> each = scopes.entrySet().iterator();
      while (each.hasNext()) {
        Map.Entry<String, Set<String>> scope = each.next();
        if (!scope.getValue().contains(reporter)) {
          continue;
        }
        String tallyKey = pair + "|" + scope.getKey();
        String kept = tallies.get(tallyKey);
        Tally tally = kept == null ? new Tally() : Tally.decode(kept);
        tally.swap(old, next);
        tallies.put(tallyKey, tally.encode());
        String rollup =
            tally.rollup(indicatorId, indicator, period, scope.getKey(), scope.getValue().size());
        context.forward(new Record<>(tallyKey, rollup, record.timestamp()));
      }
    }
  }
}
