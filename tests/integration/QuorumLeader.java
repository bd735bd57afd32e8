import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

/**
 * Prints the node id of the KRaft quorum's leader, the active controller, as the brokers at args[0]
 * know it. aiokafka has no DescribeQuorum and the stack's Kafka ships no kafka-tools jar, so the
 * cluster fault test runs this with `java -cp "<kafka libs>/*" QuorumLeader.java <bootstrap>`.
 */
public class QuorumLeader {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        try (Admin admin = Admin.create(props)) {
            System.out.println(admin.describeMetadataQuorum().quorumInfo().get().leaderId());
        }
    }
}
